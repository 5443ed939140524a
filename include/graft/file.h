// Files written so that a crash or a full disk never leaves a half-written
// one: the bytes go to a temporary file in the same folder, are flushed to
// disk, and only then renamed over the target.
//
// The temporary file is hidden and named after its target and process,
// ".NAME.tmp.PID.SEQ", so that it is never taken for an output. A killed
// process leaves its one behind; the next write of the same target (and
// remove_stale_temporaries) deletes it once that process is gone.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace graft {

// Writes `bytes` to `path` atomically. On any failure (a full disk, a
// read-only folder) throws kIO naming the file, removes the temporary file,
// and leaves a previous `path` as it was.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Writes several files (path, bytes) so that a failure leaves every one of
// them as it was: all temporary files are written and flushed first, then
// renamed in the given order. A crash during the renames can leave some files
// replaced and some not, each of them whole.
void write_files_atomically(const std::vector<std::pair<std::string, std::string>>& files);

// Deletes the temporary files of killed writers in `dir` (only those of the
// target `name` when given). Best effort: a folder it cannot change keeps them.
void remove_stale_temporaries(const std::string& dir, const std::string& name = "");

// Whether `file_name` (no folder) is one of write_file_atomically's temporary files.
bool is_temporary_file_name(const std::string& file_name);

// Throws kIO naming `dir` unless a file can be created in it (read-only
// file systems, permissions): to fail before hours of work, not after.
void check_folder_writable(const std::string& dir);

// The whole contents of a file; kNotFound if it cannot be opened.
std::string read_file(const std::string& path);

}  // namespace graft
