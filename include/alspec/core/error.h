// Errors travel as exceptions carrying a category and a message that names the input.
// Front ends turn them into one line and an exit code (see tools/alspec/main.cpp).
#pragma once

#include <stdexcept>
#include <string>

namespace alspec {

enum class ErrorKind {
  kInvalidModel,     // malformed or unsupported model/vocab file  -> CLI exit 2
  kInvalidArgument,  // impossible option or bad request            -> CLI exit 2
  kIo,               // file cannot be opened/read                  -> CLI exit 2
  kRuntime,          // failure during execution (device error, ...) -> CLI exit 1
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void throw_invalid_model(const std::string& msg) {
  throw Error(ErrorKind::kInvalidModel, msg);
}
[[noreturn]] inline void throw_invalid_argument(const std::string& msg) {
  throw Error(ErrorKind::kInvalidArgument, msg);
}

}  // namespace alspec
