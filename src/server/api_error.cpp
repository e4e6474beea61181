#include "alspec/server/api_error.h"

namespace alspec::server {

nlohmann::json error_json(int /*status*/, const std::string& type, const std::string& code, const std::string& message) {
  nlohmann::json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = nullptr;
  e["code"] = code;
  return nlohmann::json{{"error", e}};
}

nlohmann::json error_json(const ApiError& e) {
  nlohmann::json j = error_json(e.status(), e.type(), e.code(), e.what());
  if (!e.param().empty()) j["error"]["param"] = e.param();
  return j;
}

}  // namespace alspec::server
