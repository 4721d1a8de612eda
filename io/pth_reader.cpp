// PyTorch .pth/.pt reader: the zip written by torch.save (>= 1.6), whose `<archive>/data.pkl` is read by
// the restricted unpickler (io/pickle_torch.h) and whose `<archive>/data/<key>` entries hold the raw
// storages. Contiguous views at offset 0 point straight into the memory-mapped file (torch stores
// entries uncompressed and 64-byte aligned); other views are copied into owned contiguous buffers.
// Not read: the legacy pre-1.6 format, TorchScript archives, big-endian checkpoints.
#include <algorithm>
#include <cstring>

#include "dit/core/log.h"
#include "io/mapped_file.h"
#include "io/pickle_torch.h"
#include "io/tensor_file.h"
#include "io/zip_archive.h"

namespace vdit {
namespace {

// Copies a strided view of `elem`-byte elements into contiguous `dst` (row-major).
void copy_strided(uint8_t* dst, const uint8_t* src, size_t elem, const Shape& shape, const Shape& strides, size_t dim,
                  size_t* written) {
  if (dim == shape.size()) {
    std::memcpy(dst + *written, src, elem);
    *written += elem;
    return;
  }
  if (dim + 1 == shape.size() && strides[dim] == 1) {  // innermost contiguous run
    size_t n = static_cast<size_t>(shape[dim]) * elem;
    std::memcpy(dst + *written, src, n);
    *written += n;
    return;
  }
  for (int64_t i = 0; i < shape[dim]; ++i) {
    copy_strided(dst, src + static_cast<size_t>(i * strides[dim]) * elem, elem, shape, strides, dim + 1, written);
  }
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class PthFile : public TensorFile {
 public:
  Status load(const std::string& path) {
    path_ = path;
    format_ = "pth";
    VDIT_ASSIGN(auto file, MappedFile::open(path));
    keep_alive_.push_back(file);
    const uint8_t* bytes = file->data();
    const size_t size = file->size();
    if (size >= 2 && bytes[0] == 0x80 && bytes[1] <= 5) {
      return unsupported(path + ": a legacy (pre-1.6, non-zip) torch.save file: load and re-save it with a newer torch "
                                "(torch.save writes zip checkpoints since 1.6) or convert it to safetensors");
    }
    VDIT_ASSIGN(ZipArchive zip, ZipArchive::parse(bytes, size, path));
    VDIT_ASSIGN(std::string prefix, find_archive_prefix(zip));
    VDIT_TRY(check_records(zip, prefix));

    const ZipEntry* pkl = zip.find(prefix + "data.pkl");
    VDIT_ASSIGN(const uint8_t* pkl_data, zip.stored_data_checked(*pkl));
    VDIT_ASSIGN(pickle::TorchStateDict sd,
                pickle::load_torch_state_dict(pkl_data, static_cast<size_t>(pkl->size), path + ": " + pkl->name));
    for (auto& [k, v] : sd.metadata) metadata_.emplace(k, v);

    // Resolve each storage to its zip entry and check its byte count against the pickle's.
    std::vector<const uint8_t*> storage_data(sd.storages.size());
    for (size_t i = 0; i < sd.storages.size(); ++i) {
      const pickle::TorchStorage& s = sd.storages[i];
      std::string record = prefix + "data/" + s.key;
      const ZipEntry* e = zip.find(record);
      if (!e) return format_error(path + ": zip entry \"" + record + "\" is missing (the pickle references storage \"" + s.key + "\")");
      VDIT_ASSIGN(storage_data[i], zip.stored_data(*e));
      uint64_t need = s.numel * dtype_size(s.dtype);
      if (e->size != need) {
        return format_error(strfmt("%s: zip entry \"%s\" holds %llu bytes but the pickle says %llu %s elements (%llu bytes)",
                                   path.c_str(), record.c_str(), static_cast<unsigned long long>(e->size),
                                   static_cast<unsigned long long>(s.numel), dtype_name(s.dtype),
                                   static_cast<unsigned long long>(need)));
      }
    }
    // Copies are bounded: views of a stored tensor copy at most its bytes, but stride-0 (expanded)
    // views can grow without limit, so a few hundred bytes of pickle could ask for terabytes.
    const uint64_t copy_budget = 2 * static_cast<uint64_t>(size) + (uint64_t{1} << 30);
    uint64_t copied = 0;
    for (const pickle::TorchTensor& t : sd.tensors) {
      const pickle::TorchStorage& s = sd.storages[t.storage];
      TensorEntry e;
      e.name = t.name;
      e.dtype = s.dtype;
      e.shape = t.shape;
      e.source = path + ": " + prefix + "data/" + s.key;
      const size_t elem = dtype_size(s.dtype);
      const size_t numel = static_cast<size_t>(shape_numel(t.shape));
      e.nbytes = numel * elem;
      if (numel == 0) {  // an empty view may have any offset; it has no bytes
        e.data = storage_data[t.storage];
        add_entry(std::move(e));
        continue;
      }
      const uint8_t* base = storage_data[t.storage] + t.offset * elem;  // inside the entry: checked by the unpickler
      bool aligned = reinterpret_cast<uintptr_t>(base) % elem == 0;
      if (t.offset == 0 && aligned && pickle::is_contiguous_view(t.shape, t.strides)) {
        e.data = base;
      } else {
        // A transposed/sliced view (or misaligned data): materialize it, owned by this file.
        if (e.nbytes > copy_budget - copied) {
          return format_error(strfmt("%s: tensor \"%s\" (%s %s, a view of %llu stored elements) would need copies beyond "
                                     "%llu bytes in all (twice the file plus 1 GiB): refusing",
                                     path.c_str(), t.name.c_str(), dtype_name(s.dtype), shape_str(t.shape).c_str(),
                                     static_cast<unsigned long long>(s.numel), static_cast<unsigned long long>(copy_budget)));
        }
        auto buf = HostBuffer::allocate(e.nbytes);
        if (!buf) return buf.status().with_context(path + ": tensor \"" + t.name + "\"");
        size_t written = 0;
        copy_strided(static_cast<uint8_t*>((*buf)->data()), base, elem, t.shape, t.strides, 0, &written);
        e.data = static_cast<const uint8_t*>((*buf)->data());
        keep_alive_.push_back(*buf);
        copied += e.nbytes;
      }
      add_entry(std::move(e));
    }
    if (copied) {
      VDIT_LOG_DEBUG("%s: copied %llu bytes of non-contiguous or offset tensor views", path.c_str(),
                     static_cast<unsigned long long>(copied));
    }
    return Status::ok();
  }

 private:
  // torch names every record "<archive>/<record>", where <archive> is the file's stem at save time;
  // like torch's reader, take it from the one top-level folder that holds data.pkl.
  Result<std::string> find_archive_prefix(const ZipArchive& zip) const {
    std::string prefix;
    int found = 0;
    for (const ZipEntry& e : zip.entries()) {
      const std::string& n = e.name;
      size_t slash = n.find('/');
      if (slash != std::string::npos && n.compare(slash, std::string::npos, "/data.pkl") == 0) {
        prefix = n.substr(0, slash + 1);
        ++found;
      }
    }
    if (found == 0) {
      return format_error(path_ + ": zip entry \"<archive>/data.pkl\" is missing: not a torch.save checkpoint (or the zip is incomplete)");
    }
    if (found > 1) return format_error(path_ + ": several \"<archive>/data.pkl\" entries: not a single torch.save checkpoint");
    return prefix;
  }

  Status check_records(const ZipArchive& zip, const std::string& prefix) {
    if (zip.find(prefix + "constants.pkl")) {
      return unsupported(path_ + ": a TorchScript archive (torch.jit.save), not a state dict: save the weights with "
                                 "torch.save(model.state_dict(), path)");
    }
    if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
      VDIT_ASSIGN(const uint8_t* p, zip.stored_data(*bo));
      std::string order = trim(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(std::min<uint64_t>(bo->size, 16))));
      if (order != "little") {
        return unsupported(path_ + ": storages are stored in \"" + order + "\" byte order; vdit reads little-endian checkpoints only");
      }
    }
    for (const char* rec : {"version", ".data/version"}) {
      const ZipEntry* v = zip.find(prefix + rec);
      if (!v || v->size > 16) continue;
      VDIT_ASSIGN(const uint8_t* p, zip.stored_data(*v));
      metadata_["torch.format_version"] = trim(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(v->size)));
      break;
    }
    return Status::ok();
  }
};

}  // namespace

Result<std::unique_ptr<TensorFile>> open_pth(const std::string& path) {
  auto f = std::make_unique<PthFile>();
  VDIT_TRY(f->load(path));
  return std::unique_ptr<TensorFile>(std::move(f));
}

}  // namespace vdit
