// Fault injection for the crash tests (tests/crash_resume_test.cpp).
//
// With GRAFT_FAULT_KILL_AT=POINT (or POINT@N) in the environment, the process
// kills itself with SIGKILL the first (Nth) time it passes the fault point
// named POINT: a crash at a chosen moment, as a power cut or the OOM killer
// would cause one. Unset (always, outside the tests) a point costs one
// comparison against the empty name.
//
// The points:
//   features          a batch of images' features computed (and appended to the cache)
//   step              an optimizer step taken (mid-epoch)
//   half-write:NAME   write_file_atomically: half of NAME's temporary file written
//   write:NAME        ... NAME's temporary file complete and flushed, not yet renamed
//   rename:NAME       ... just before NAME's rename (several files: after the earlier renames)
// NAME is the target's file name without its folder, e.g. write:checkpoint.ckpt.
#pragma once

#include <string_view>

namespace graft {

// Kills the process if `prefix` + `name` is the armed point and this is its Nth pass.
void fault_point(std::string_view prefix, std::string_view name = {});

}  // namespace graft
