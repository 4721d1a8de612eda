// safetensors reader (single file and sharded `*.safetensors.index.json`), memory-mapped and fully
// bounds-checked: header length, JSON, dtypes, shape/byte-count agreement, offsets inside the data
// section, no overlaps.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "io/tensor_file.h"

namespace vdit {
namespace {

using json = nlohmann::json;

class SafetensorsFile : public TensorFile {
 public:
  Status load(const std::string& path) {
    path_ = path;
    format_ = "safetensors";
    VDIT_ASSIGN(auto file, MappedFile::open(path));
    keep_alive_.push_back(file);
    return parse(*file, path);
  }

  // Parses one file's header and appends its tensors (shared with the sharded reader).
  Status parse(const MappedFile& file, const std::string& path) {
    const size_t size = file.size();
    if (size < 8) return format_error(strfmt("%s: truncated: %zu bytes, a safetensors file starts with an 8-byte header length", path.c_str(), size));
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file.data()[i];
    if (header_len > size - 8) {
      return format_error(strfmt("%s: header length %llu past the end of the file (%zu bytes): file truncated or not safetensors",
                                 path.c_str(), static_cast<unsigned long long>(header_len), size));
    }
    const char* hp = reinterpret_cast<const char*>(file.data() + 8);
    json header = json::parse(hp, hp + header_len, nullptr, /*allow_exceptions=*/false);
    if (header.is_discarded() || !header.is_object()) {
      return format_error(path + ": header is not a valid JSON object");
    }
    const uint8_t* data_start = file.data() + 8 + header_len;
    const size_t data_size = size - 8 - header_len;
    std::vector<std::pair<size_t, size_t>> ranges;  // [begin, end) for the overlap check, with entry idx
    std::vector<std::string> range_names;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) return format_error(path + ": __metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) return format_error(path + ": __metadata__ value \"" + m.key() + "\" is not a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
          !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
          v["data_offsets"].size() != 2) {
        return format_error(path + ": tensor \"" + name + "\" needs dtype (string), shape (array) and data_offsets ([begin, end])");
      }
      auto dt = dtype_from_safetensors(v["dtype"].get<std::string>());
      if (!dt) return dt.status().with_context(path + ": tensor \"" + name + "\"");
      TensorEntry e;
      e.name = name;
      e.dtype = *dt;
      e.source = path;
      // `nonzero` (the product of the non-zero dims) is bounded too: [0, 2^40, 2^40] is empty, but
      // multiplying its shape out (shape_numel) would overflow.
      uint64_t numel = 1, nonzero = 1;
      for (const json& d : v["shape"]) {
        if (!d.is_number_unsigned()) return format_error(path + ": tensor \"" + name + "\" has a shape entry that is not a non-negative integer");
        uint64_t dim = d.get<uint64_t>();
        if (dim > (1ull << 40) || (dim && nonzero > (1ull << 50) / dim)) return format_error(path + ": tensor \"" + name + "\" has an absurd shape");
        numel *= dim;
        if (dim) nonzero *= dim;
        e.shape.push_back(static_cast<int64_t>(dim));
      }
      const json& off = v["data_offsets"];
      if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
        return format_error(path + ": tensor \"" + name + "\" has non-integer data_offsets");
      }
      uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
      if (begin > end || end > data_size) {
        return format_error(strfmt("%s: tensor \"%s\" data_offsets [%llu, %llu] outside the data section (%zu bytes)",
                                   path.c_str(), name.c_str(), static_cast<unsigned long long>(begin),
                                   static_cast<unsigned long long>(end), data_size));
      }
      uint64_t expect = numel * dtype_size(e.dtype);
      if (end - begin != expect) {
        return format_error(strfmt("%s: tensor \"%s\" %s %s needs %llu bytes but data_offsets span %llu",
                                   path.c_str(), name.c_str(), dtype_name(e.dtype), shape_str(e.shape).c_str(),
                                   static_cast<unsigned long long>(expect), static_cast<unsigned long long>(end - begin)));
      }
      e.data = data_start + begin;
      e.nbytes = static_cast<size_t>(expect);
      if (index_.count(name)) return format_error(path + ": tensor \"" + name + "\" appears twice");
      ranges.emplace_back(begin, end);
      range_names.push_back(name);
      add_entry(std::move(e));
    }
    // Overlap check (zero-length tensors never overlap).
    std::vector<size_t> order(ranges.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
    size_t prev_end = 0;
    std::string prev_name;
    for (size_t i : order) {
      if (ranges[i].first == ranges[i].second) continue;
      if (ranges[i].first < prev_end) {
        return format_error(path + ": tensors \"" + prev_name + "\" and \"" + range_names[i] + "\" overlap in the data section");
      }
      prev_end = ranges[i].second;
      prev_name = range_names[i];
    }
    return Status::ok();
  }

  Status load_index(const std::string& index_path) {
    path_ = index_path;
    format_ = "safetensors-sharded";
    VDIT_ASSIGN(auto idx_file, MappedFile::open(index_path));
    const char* p = reinterpret_cast<const char*>(idx_file->data());
    json idx = json::parse(p, p + idx_file->size(), nullptr, false);
    if (idx.is_discarded() || !idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object()) {
      return format_error(index_path + ": not a valid index (a JSON object with a \"weight_map\" object)");
    }
    if (idx.contains("metadata") && idx["metadata"].is_object()) {
      for (auto m = idx["metadata"].begin(); m != idx["metadata"].end(); ++m) {
        metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
      }
    }
    std::string dir = index_path.substr(0, index_path.find_last_of('/') + 1);
    std::map<std::string, std::vector<std::string>> shard_tensors;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return format_error(index_path + ": weight_map entry \"" + it.key() + "\" is not a file name");
      std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
        return format_error(index_path + ": shard name \"" + shard + "\" must be a plain file name in the same folder");
      }
      shard_tensors[shard].push_back(it.key());
    }
    for (auto& [shard, names] : shard_tensors) {
      std::string shard_path = dir + shard;
      auto opened = MappedFile::open(shard_path);
      if (!opened) return Status(opened.status().code(), index_path + ": shard: " + opened.status().message());
      auto f = *opened;
      keep_alive_.push_back(f);
      size_t before = entries_.size();
      auto saved_meta = metadata_;
      VDIT_TRY(parse(*f, shard_path));
      for (auto& [k, v] : metadata_) saved_meta.emplace(k, v);  // index metadata wins
      metadata_ = std::move(saved_meta);
      for (const std::string& n : names) {
        const TensorEntry* e = find(n);
        if (!e || e->source != shard_path) {
          return format_error(index_path + ": tensor \"" + n + "\" is listed in the index but missing from " + shard);
        }
      }
      for (size_t i = before; i < entries_.size(); ++i) {
        if (!idx["weight_map"].contains(entries_[i].name)) {
          return format_error(shard_path + ": tensor \"" + entries_[i].name + "\" is not listed in the index");
        }
      }
    }
    return Status::ok();
  }
};

}  // namespace

Result<std::unique_ptr<TensorFile>> open_safetensors(const std::string& path) {
  auto f = std::make_unique<SafetensorsFile>();
  VDIT_TRY(f->load(path));
  return std::unique_ptr<TensorFile>(std::move(f));
}

Result<std::unique_ptr<TensorFile>> open_safetensors_index(const std::string& path) {
  auto f = std::make_unique<SafetensorsFile>();
  VDIT_TRY(f->load_index(path));
  return std::unique_ptr<TensorFile>(std::move(f));
}

}  // namespace vdit
