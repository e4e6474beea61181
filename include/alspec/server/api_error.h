// Errors the HTTP API reports to clients, in the OpenAI layout
// {"error": {"message", "type", "param", "code"}} with an HTTP status.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace alspec::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string code, const std::string& message, std::string param = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)), code_(std::move(code)),
        param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string type_;
  std::string code_;
  std::string param_;
};

// 400 invalid_request_error naming the offending body field.
[[noreturn]] inline void throw_bad_field(const std::string& param, const std::string& message,
                                         const std::string& code = "invalid_value") {
  throw ApiError(400, "invalid_request_error", code, param.empty() ? message : "'" + param + "': " + message, param);
}

nlohmann::json error_json(const ApiError& e);
nlohmann::json error_json(int status, const std::string& type, const std::string& code, const std::string& message);

}  // namespace alspec::server
