// Typed, range-checked reading of a method's JSON configuration object. Each reader marks the keys it
// consumed; finish() then rejects every key nobody read, naming it and the accepted keys, so a typo in an
// --attention-config file is an error instead of a silently ignored setting.
// Also: loading a config from a file or inline text, and KEY=VALUE overrides (the CLI's flags).
// Merging presets with user keys happens in make_attention() (methods/method.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit::attn {

class ConfigReader {
 public:
  // `config` must be a JSON object (or null = empty); `what` names it in messages ("radial config").
  ConfigReader(const nlohmann::json& config, std::string what);
  Status status() const { return status_; }  // not ok when `config` was not an object

  // Absent keys leave *dst unchanged and return ok. A present key of the wrong type or out of range is
  // invalid_argument with the key, the value and the accepted range. Ranges are inclusive unless noted.
  Status get_int(const char* key, int* dst, int lo, int hi);
  Status get_int64(const char* key, int64_t* dst, int64_t lo, int64_t hi);
  // lo_open: the range is (lo, hi] instead of [lo, hi] (e.g. a density in (0, 1]).
  Status get_double(const char* key, double* dst, double lo, double hi, bool lo_open = false);
  Status get_bool(const char* key, bool* dst);
  // `allowed` empty: any string.
  Status get_string(const char* key, std::string* dst, const std::vector<std::string>& allowed = {});
  // An integer list; a plain integer is accepted as a one-element list.
  Status get_int_list(const char* key, std::vector<int>* dst, int lo, int hi);
  // Raw access for structured values (marks the key consumed); nullptr when absent.
  const nlohmann::json* get_raw(const char* key);

  bool has(const char* key) const;
  // Marks `key` known without reading it (e.g. "method" when the factory already handled it).
  void accept(const char* key);
  // invalid_argument naming every unread key and the keys that were read/accepted.
  Status finish() const;

 private:
  Status fail(const char* key, const std::string& why) const;
  nlohmann::json config_;
  std::string what_;
  std::set<std::string> known_;
  Status status_;
};

// `text` is inline JSON when it starts with '{' (after spaces), else the path of a JSON file. The result
// is an object; anything else is invalid_argument / not_found / format_error with the reason.
Result<nlohmann::json> load_attention_config(const std::string& text);

// Sets config[KEY] from "KEY=VALUE": VALUE is parsed as JSON (12, 0.5, true, [1,2], "x"), and taken as a
// plain string when it is not valid JSON (so model=wan works unquoted).
Status apply_config_override(nlohmann::json* config, const std::string& key_eq_value);

}  // namespace vdit::attn
