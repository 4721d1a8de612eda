// ConfigReader: typed, range-checked reads from a JSON object with unknown-key detection.
#include "attention/config_reader.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace vdit::attn {

ConfigReader::ConfigReader(const nlohmann::json& config, std::string what) : what_(std::move(what)) {
  if (config.is_null()) {
    config_ = nlohmann::json::object();
  } else if (!config.is_object()) {
    config_ = nlohmann::json::object();
    status_ = invalid_argument(strfmt("%s must be a JSON object like {\"dense_steps\": 12}, got: %s", what_.c_str(),
                                      config.dump().c_str()));
  } else {
    config_ = config;
  }
}

Status ConfigReader::fail(const char* key, const std::string& why) const {
  return invalid_argument(strfmt("%s: key \"%s\" = %s: %s", what_.c_str(), key, config_[key].dump().c_str(),
                                 why.c_str()));
}

bool ConfigReader::has(const char* key) const { return config_.contains(key); }
void ConfigReader::accept(const char* key) { known_.insert(key); }

const nlohmann::json* ConfigReader::get_raw(const char* key) {
  known_.insert(key);
  auto it = config_.find(key);
  return it == config_.end() ? nullptr : &*it;
}

Status ConfigReader::get_int64(const char* key, int64_t* dst, int64_t lo, int64_t hi) {
  const nlohmann::json* j = get_raw(key);
  if (!j) return Status::ok();
  int64_t v = 0;
  if (j->is_number_integer() || j->is_number_unsigned()) {
    v = j->get<int64_t>();
  } else if (j->is_number_float() && std::floor(j->get<double>()) == j->get<double>() &&
             std::fabs(j->get<double>()) < 9e15) {
    v = static_cast<int64_t>(j->get<double>());
  } else {
    return fail(key, "expected an integer");
  }
  if (v < lo || v > hi) {
    return fail(key, strfmt("must be in [%lld, %lld]", static_cast<long long>(lo), static_cast<long long>(hi)));
  }
  *dst = v;
  return Status::ok();
}

Status ConfigReader::get_int(const char* key, int* dst, int lo, int hi) {
  int64_t v = *dst;
  VDIT_TRY(get_int64(key, &v, lo, hi));
  *dst = static_cast<int>(v);
  return Status::ok();
}

Status ConfigReader::get_double(const char* key, double* dst, double lo, double hi, bool lo_open) {
  const nlohmann::json* j = get_raw(key);
  if (!j) return Status::ok();
  if (!j->is_number()) return fail(key, "expected a number");
  const double v = j->get<double>();
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (!ok) return fail(key, strfmt("must be in %s%g, %g]", lo_open ? "(" : "[", lo, hi));
  *dst = v;
  return Status::ok();
}

Status ConfigReader::get_bool(const char* key, bool* dst) {
  const nlohmann::json* j = get_raw(key);
  if (!j) return Status::ok();
  if (!j->is_boolean()) return fail(key, "expected true or false");
  *dst = j->get<bool>();
  return Status::ok();
}

Status ConfigReader::get_string(const char* key, std::string* dst, const std::vector<std::string>& allowed) {
  const nlohmann::json* j = get_raw(key);
  if (!j) return Status::ok();
  if (!j->is_string()) return fail(key, "expected a string");
  const std::string v = j->get<std::string>();
  if (!allowed.empty()) {
    bool found = false;
    std::string list;
    for (const auto& a : allowed) {
      found = found || a == v;
      list += (list.empty() ? "" : ", ") + a;
    }
    if (!found) return fail(key, "must be one of: " + list);
  }
  *dst = v;
  return Status::ok();
}

Status ConfigReader::get_int_list(const char* key, std::vector<int>* dst, int lo, int hi) {
  const nlohmann::json* j = get_raw(key);
  if (!j) return Status::ok();
  std::vector<int> out;
  auto one = [&](const nlohmann::json& e) -> Status {
    if (!e.is_number_integer()) return fail(key, "expected an integer or a list of integers");
    const int64_t v = e.get<int64_t>();
    if (v < lo || v > hi) return fail(key, strfmt("entries must be in [%d, %d]", lo, hi));
    out.push_back(static_cast<int>(v));
    return Status::ok();
  };
  if (j->is_array()) {
    for (const auto& e : *j) VDIT_TRY(one(e));
  } else {
    VDIT_TRY(one(*j));
  }
  *dst = std::move(out);
  return Status::ok();
}

Status ConfigReader::finish() const {
  VDIT_TRY(status_);
  std::string unknown;
  for (auto it = config_.begin(); it != config_.end(); ++it) {
    if (!known_.count(it.key())) unknown += (unknown.empty() ? "\"" : ", \"") + it.key() + "\"";
  }
  if (unknown.empty()) return Status::ok();
  std::string accepted;
  for (const auto& k : known_) accepted += (accepted.empty() ? "" : ", ") + k;
  return invalid_argument(strfmt("%s: unknown key(s) %s; accepted keys: %s (see attention/README.md)", what_.c_str(),
                                 unknown.c_str(), accepted.c_str()));
}

Result<nlohmann::json> load_attention_config(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  std::string body;
  std::string where;
  if (first != std::string::npos && text[first] == '{') {
    body = text;
    where = "inline attention config";
  } else {
    std::ifstream f(text);
    if (!f) return not_found(strfmt("attention config file \"%s\" cannot be opened (give a path or inline JSON "
                                    "starting with '{')", text.c_str()));
    std::stringstream ss;
    ss << f.rdbuf();
    body = ss.str();
    where = "attention config file \"" + text + "\"";
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (j.is_discarded()) return format_error(where + " is not valid JSON");
  if (!j.is_object()) return invalid_argument(where + " must be a JSON object like {\"decay\": 0.2}");
  return j;
}

Status apply_config_override(nlohmann::json* config, const std::string& key_eq_value) {
  const size_t eq = key_eq_value.find('=');
  if (eq == std::string::npos || eq == 0) {
    return invalid_argument(strfmt("attention setting \"%s\" must look like KEY=VALUE (e.g. decay=0.5)",
                                   key_eq_value.c_str()));
  }
  const std::string key = key_eq_value.substr(0, eq), value = key_eq_value.substr(eq + 1);
  nlohmann::json v = nlohmann::json::parse(value, nullptr, false);
  if (v.is_discarded()) v = value;
  if (!config->is_object()) *config = nlohmann::json::object();
  (*config)[key] = v;
  return Status::ok();
}

}  // namespace vdit::attn
