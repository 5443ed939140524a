// graft's one error type. Errors a user can cause (a malformed model, an
// unsupported op, a bad input file) are thrown as graft::Error with a kind and
// a chain of context ("model.onnx", "node 'conv1' (Conv)") and caught at the
// command line, which prints one line and exits non-zero. Broken internal
// invariants use GRAFT_ASSERT and are kind kInternal.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace graft {

enum class ErrorKind {
  kInvalidArgument,  // the caller or the user gave something wrong
  kNotFound,         // a file, node or value that does not exist
  kCorruption,       // a file whose contents are malformed or truncated
  kUnsupported,      // valid input that graft does not handle (yet)
  kIO,               // the operating system refused a read or write
  kInternal,         // a bug in graft
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::exception {
 public:
  Error(ErrorKind kind, std::string message);

  ErrorKind kind() const { return kind_; }
  // The message without context.
  const std::string& message() const { return message_; }
  // Prepends a context item, outermost last: "file.onnx: node 'x' (Conv): msg".
  Error& add_context(std::string context);
  const char* what() const noexcept override { return full_.c_str(); }

 private:
  void rebuild();
  ErrorKind kind_;
  std::string message_;
  std::vector<std::string> context_;  // innermost first
  std::string full_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(kind, fmt::format(f, std::forward<Args>(args)...));
}

// Runs fn(); an Error escaping it gets `context` prepended.
template <typename Fn>
decltype(auto) with_context(const std::string& context, Fn&& fn) {
  try {
    return fn();
  } catch (Error& e) {
    e.add_context(context);
    throw;
  }
}

}  // namespace graft

// A user-caused condition: throws graft::Error of the given kind.
#define GRAFT_CHECK(cond, kind, ...)                                \
  do {                                                              \
    if (!(cond)) ::graft::fail(::graft::ErrorKind::kind, __VA_ARGS__); \
  } while (0)

// An internal invariant: a failure is a bug in graft.
#define GRAFT_ASSERT(cond)                                                       \
  do {                                                                           \
    if (!(cond))                                                                 \
      ::graft::fail(::graft::ErrorKind::kInternal, "internal check failed: {} ({}:{})", \
                    #cond, __FILE__, __LINE__);                                  \
  } while (0)
