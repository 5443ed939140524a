// Files written so that a crash or a full disk never leaves a half-written
// one: the bytes go to a temporary file in the same folder, are flushed to
// disk, and only then renamed over the target.
#pragma once

#include <string>

namespace graft {

// Writes `bytes` to `path` atomically. On any failure (a full disk, a
// read-only folder) throws kIO naming the file, removes the temporary file,
// and leaves a previous `path` as it was.
void write_file_atomically(const std::string& path, const std::string& bytes);

// The whole contents of a file; kNotFound if it cannot be opened.
std::string read_file(const std::string& path);

}  // namespace graft
