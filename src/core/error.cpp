#include "graft/error.h"

namespace graft {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kCorruption: return "corrupt input";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kIO: return "I/O error";
    case ErrorKind::kInternal: return "internal error";
  }
  return "error";
}

Error::Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {
  rebuild();
}

Error& Error::add_context(std::string context) {
  context_.push_back(std::move(context));
  rebuild();
  return *this;
}

void Error::rebuild() {
  full_.clear();
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) full_ += *it + ": ";
  full_ += message_;
}

}  // namespace graft
