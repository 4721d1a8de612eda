// ONNX reader: the graph's initializers through the ONNX protobuf definitions (libonnx-dev), as
// name -> (dtype, shape, bytes). raw_data is used in place (protobuf holds one copy of it); typed
// fields (float_data, int32_data for 8/16-bit types incl. f16/bf16 bits, int64_data, double_data) are
// converted into owned buffers; external data is memory-mapped from files next to the model, with the
// location confined to the model's folder and offset/length bounds-checked. Not read: sparse
// initializers, Constant nodes, subgraph initializers, string and complex tensors, models over 2 GiB.
// Built as the loadable module libvdit_onnx.so (see io/plugins/onnx_plugin.h for why), not into libvdit.
#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <onnx/onnx_pb.h>

#include "io/mapped_file.h"
#include "io/plugins/onnx_plugin.h"
#include "io/tensor_file.h"

namespace vdit {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 48;
constexpr uint64_t kMaxNumel = uint64_t{1} << 60;

const char* onnx_type_name(int t) {
  static const char* names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
                                "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
                                "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1"};
  return t >= 0 && t < static_cast<int>(sizeof(names) / sizeof(names[0])) ? names[t] : nullptr;
}

Result<DType> dtype_from_onnx(int t) {
  switch (t) {
    case onnx::TensorProto_DataType_FLOAT: return DType::f32;
    case onnx::TensorProto_DataType_FLOAT16: return DType::f16;
    case onnx::TensorProto_DataType_BFLOAT16: return DType::bf16;
    case onnx::TensorProto_DataType_DOUBLE: return DType::f64;
    case onnx::TensorProto_DataType_INT64: return DType::i64;
    case onnx::TensorProto_DataType_INT32: return DType::i32;
    case onnx::TensorProto_DataType_INT16: return DType::i16;
    case onnx::TensorProto_DataType_INT8: return DType::i8;
    case onnx::TensorProto_DataType_UINT8: return DType::u8;
    case onnx::TensorProto_DataType_BOOL: return DType::boolean;
    default: break;
  }
  if (t == 0 || !onnx_type_name(t)) return format_error(strfmt("unknown ONNX data type %d", t));
  return unsupported(strfmt("ONNX data type %s (%d) is not supported (vdit reads FLOAT FLOAT16 BFLOAT16 DOUBLE INT64 INT32 INT16 "
                            "INT8 UINT8 BOOL)",
                            onnx_type_name(t), t));
}

// Strict decimal parse of an external_data offset/length.
bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

struct ExternalRange {
  uint64_t begin, end;
  std::string name;
};

class OnnxFile : public TensorFile {
 public:
  Status load(const std::string& path) {
    path_ = path;
    format_ = "onnx";
    VDIT_ASSIGN(auto file, MappedFile::open(path));
    if (file->size() > static_cast<size_t>(INT_MAX)) {
      return unsupported(path + ": ONNX file over 2 GiB: protobuf cannot parse it; such models keep their weights as external data");
    }
    auto model = std::make_shared<onnx::ModelProto>();
    if (!model->ParseFromArray(file->data(), static_cast<int>(file->size()))) {
      return format_error(path + ": not a valid ONNX model (the ModelProto protobuf does not parse): truncated or not ONNX");
    }
    if (!model->has_graph()) return format_error(path + ": the ONNX model has no graph: truncated or not an ONNX model");
    keep_alive_.push_back(model);  // raw_data pointers below point into it
    read_metadata(*model);
    const onnx::GraphProto& g = model->graph();
    if (g.sparse_initializer_size() > 0) {
      return unsupported(strfmt("%s: the graph has %d sparse initializers, which vdit does not read", path.c_str(),
                                g.sparse_initializer_size()));
    }
    dir_ = path.find('/') == std::string::npos ? "." : path.substr(0, path.find_last_of('/'));
    if (dir_.empty()) dir_ = "/";
    for (int i = 0; i < g.initializer_size(); ++i) VDIT_TRY(add_initializer(g.initializer(i), i));
    return check_overlaps();
  }

 private:
  std::string dir_;
  std::map<std::string, std::shared_ptr<MappedFile>> external_files_;
  std::map<std::string, std::vector<ExternalRange>> external_ranges_;

  void read_metadata(const onnx::ModelProto& m) {
    if (m.has_ir_version()) metadata_["onnx.ir_version"] = std::to_string(m.ir_version());
    if (!m.producer_name().empty()) metadata_["onnx.producer_name"] = m.producer_name();
    if (!m.producer_version().empty()) metadata_["onnx.producer_version"] = m.producer_version();
    if (!m.domain().empty()) metadata_["onnx.domain"] = m.domain();
    if (m.has_model_version()) metadata_["onnx.model_version"] = std::to_string(m.model_version());
    if (!m.graph().name().empty()) metadata_["onnx.graph_name"] = m.graph().name();
    std::string opsets;
    for (const auto& o : m.opset_import()) {
      if (!opsets.empty()) opsets += ", ";
      opsets += (o.domain().empty() ? std::string("ai.onnx") : o.domain()) + ":" + std::to_string(o.version());
    }
    if (!opsets.empty()) metadata_["onnx.opset"] = opsets;
    for (const auto& kv : m.metadata_props()) metadata_.emplace(kv.key(), kv.value());
  }

  Status fail(const std::string& name, const std::string& what) const {
    return format_error(path_ + ": initializer \"" + name + "\": " + what);
  }

  Status add_initializer(const onnx::TensorProto& t, int index) {
    if (t.name().empty()) return format_error(strfmt("%s: initializer %d has no name", path_.c_str(), index));
    const std::string& name = t.name();
    if (find(name)) return format_error(path_ + ": initializer \"" + name + "\" appears twice");
    auto dt = dtype_from_onnx(t.data_type());
    if (!dt) return Status(dt.status().code(), path_ + ": initializer \"" + name + "\": " + dt.status().message());
    if (t.has_segment()) return Status(StatusCode::unsupported, path_ + ": initializer \"" + name + "\" is segmented, which vdit does not read");
    TensorEntry e;
    e.name = name;
    e.dtype = *dt;
    e.source = path_;
    // The product of the non-zero dims is bounded too: a zero dim makes the tensor empty, but code
    // that multiplies the shape out (shape_numel) must not overflow on [0, 2^40, 2^40].
    uint64_t numel = 1, nonzero = 1;
    for (int64_t d : t.dims()) {
      if (d < 0 || d > kMaxDim) return fail(name, strfmt("dimension %lld is negative or absurd", static_cast<long long>(d)));
      if (d > 0) nonzero = nonzero > kMaxNumel / static_cast<uint64_t>(d) ? kMaxNumel + 1 : nonzero * static_cast<uint64_t>(d);
      if (d == 0) numel = 0;
      e.shape.push_back(d);
    }
    if (nonzero > kMaxNumel) return fail(name, "more than 2^60 elements");
    if (numel) numel = nonzero;
    const size_t elem = dtype_size(e.dtype);
    e.nbytes = static_cast<size_t>(numel) * elem;
    std::string what = strfmt("%s %s", dtype_name(e.dtype), shape_str(e.shape).c_str());

    if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
      VDIT_TRY(read_external(&e, t, what));
    } else if (t.has_raw_data()) {
      if (t.raw_data().size() != e.nbytes) {
        return fail(name, strfmt("%s needs %zu bytes but raw_data holds %zu", what.c_str(), e.nbytes, t.raw_data().size()));
      }
      VDIT_TRY(point_or_copy(&e, reinterpret_cast<const uint8_t*>(t.raw_data().data())));
    } else {
      VDIT_TRY(read_typed(&e, t, numel, what));
    }
    add_entry(std::move(e));
    return Status::ok();
  }

  // Uses `src` in place when it is aligned for the element type, else an aligned owned copy.
  Status point_or_copy(TensorEntry* e, const uint8_t* src) {
    if (e->nbytes == 0 || reinterpret_cast<uintptr_t>(src) % dtype_size(e->dtype) == 0) {
      e->data = src;
      return Status::ok();
    }
    VDIT_ASSIGN(auto buf, HostBuffer::allocate(e->nbytes));
    std::memcpy(buf->data(), src, e->nbytes);
    e->data = static_cast<const uint8_t*>(buf->data());
    keep_alive_.push_back(buf);
    return Status::ok();
  }

  // The typed repeated fields: which one holds the values depends on the data type.
  Status read_typed(TensorEntry* e, const onnx::TensorProto& t, uint64_t numel, const std::string& what) {
    const char* field = "int32_data";
    int count = t.int32_data_size();
    if (e->dtype == DType::f32) field = "float_data", count = t.float_data_size();
    if (e->dtype == DType::f64) field = "double_data", count = t.double_data_size();
    if (e->dtype == DType::i64) field = "int64_data", count = t.int64_data_size();
    if (static_cast<uint64_t>(count) != numel) {
      return fail(e->name, strfmt("%s needs %llu values in %s but it has %d (and no raw_data)", what.c_str(),
                                  static_cast<unsigned long long>(numel), field, count));
    }
    VDIT_ASSIGN(auto buf, HostBuffer::allocate(e->nbytes));
    uint8_t* dst = static_cast<uint8_t*>(buf->data());
    for (int i = 0; i < count; ++i) {
      switch (e->dtype) {
        case DType::f32: { float v = t.float_data(i); std::memcpy(dst + 4 * i, &v, 4); break; }
        case DType::f64: { double v = t.double_data(i); std::memcpy(dst + 8 * i, &v, 8); break; }
        case DType::i64: { int64_t v = t.int64_data(i); std::memcpy(dst + 8 * i, &v, 8); break; }
        case DType::i32: { int32_t v = t.int32_data(i); std::memcpy(dst + 4 * i, &v, 4); break; }
        case DType::f16: case DType::bf16: case DType::i16: {  // the low 16 bits (f16/bf16: the bit pattern)
          uint16_t v = static_cast<uint16_t>(t.int32_data(i));
          std::memcpy(dst + 2 * i, &v, 2);
          break;
        }
        case DType::i8: case DType::u8: dst[i] = static_cast<uint8_t>(t.int32_data(i)); break;
        case DType::boolean: dst[i] = t.int32_data(i) != 0; break;
      }
    }
    e->data = dst;
    keep_alive_.push_back(buf);
    return Status::ok();
  }

  Status read_external(TensorEntry* e, const onnx::TensorProto& t, const std::string& what) {
    std::string location;
    uint64_t offset = 0, length = 0;
    bool has_location = false, has_length = false;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") {
        location = kv.value();
        has_location = true;
      } else if (kv.key() == "offset" || kv.key() == "length") {
        if (!parse_u64(kv.value(), kv.key() == "offset" ? &offset : &length)) {
          return fail(e->name, "external_data " + kv.key() + " \"" + kv.value().substr(0, 40) + "\" is not a non-negative integer");
        }
        has_length |= kv.key() == "length";
      }
    }
    if (!has_location || location.empty()) return fail(e->name, "data_location is EXTERNAL but external_data has no location");
    // The location must name a file inside the model's folder: relative, no "..", no symlink out.
    bool dotdot = false;
    for (size_t b = 0; b <= location.size();) {
      size_t s = std::min(location.find('/', b), location.size());
      if (location.compare(b, s - b, "..") == 0 && s - b == 2) dotdot = true;
      b = s + 1;
    }
    if (location[0] == '/' || dotdot || location.find('\0') != std::string::npos || location.find('\\') != std::string::npos) {
      return fail(e->name, "external data location \"" + location.substr(0, 80) +
                               "\" escapes the model's folder (it must be a relative path without \"..\")");
    }
    std::string file_path = dir_ + "/" + location;
    std::string real_dir = real_path(dir_), real_file = real_path(file_path);
    std::string inside = real_dir == "/" ? real_dir : real_dir + "/";
    if (!real_file.empty() && !real_dir.empty() && real_file.compare(0, inside.size(), inside) != 0) {
      return fail(e->name, "external data location \"" + location + "\" resolves to " + real_file + ", outside the model's folder");
    }
    auto& mapped = external_files_[file_path];
    if (!mapped) {
      auto f = MappedFile::open(file_path);
      if (!f) return Status(f.status().code(), path_ + ": initializer \"" + e->name + "\": external data: " + f.status().message());
      mapped = *f;
      keep_alive_.push_back(mapped);
    }
    if (has_length && length != e->nbytes) {
      return fail(e->name, strfmt("%s needs %zu bytes but its external_data length is %llu", what.c_str(), e->nbytes,
                                  static_cast<unsigned long long>(length)));
    }
    if (offset > mapped->size() || e->nbytes > mapped->size() - offset) {
      return fail(e->name, strfmt("external data [%llu, +%zu) lies outside %s (%zu bytes)", static_cast<unsigned long long>(offset),
                                  e->nbytes, location.c_str(), mapped->size()));
    }
    e->source = file_path;
    external_ranges_[file_path].push_back({offset, offset + e->nbytes, e->name});
    return point_or_copy(e, mapped->data() + offset);
  }

  Status check_overlaps() {
    for (auto& [file, ranges] : external_ranges_) {
      std::sort(ranges.begin(), ranges.end(), [](const ExternalRange& a, const ExternalRange& b) { return a.begin < b.begin; });
      const ExternalRange* prev = nullptr;
      for (const ExternalRange& r : ranges) {
        if (r.begin == r.end) continue;
        if (prev && r.begin < prev->end) {
          return format_error(path_ + ": initializers \"" + prev->name + "\" and \"" + r.name + "\" overlap in external data " + file);
        }
        if (!prev || r.end > prev->end) prev = &r;
      }
    }
    return Status::ok();
  }
};

}  // namespace

Result<std::unique_ptr<TensorFile>> open_onnx_in_process(const std::string& path) {
  auto f = std::make_unique<OnnxFile>();
  VDIT_TRY(f->load(path));
  return std::unique_ptr<TensorFile>(std::move(f));
}

}  // namespace vdit

extern "C" int vdit_onnx_plugin_open_v1(const char* path, void** file, int* code, char* message, size_t message_size) {
  auto r = vdit::open_onnx_in_process(path);
  if (!r) {
    *code = static_cast<int>(r.status().code());
    std::snprintf(message, message_size, "%s", r.status().message().c_str());
    return 0;
  }
  *file = std::move(r).value().release();
  return 1;
}
