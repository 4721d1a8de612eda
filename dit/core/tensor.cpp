// Host buffers and tensors.
#include "dit/core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace vdit {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Result<std::shared_ptr<HostBuffer>> HostBuffer::allocate(size_t bytes) {
  std::shared_ptr<HostBuffer> b(new HostBuffer());
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  b->data_ = std::aligned_alloc(64, rounded);
  if (!b->data_) {
    return out_of_memory(strfmt("could not allocate %.1f MiB of host memory; use a smaller size or free memory",
                                bytes / 1048576.0));
  }
  b->size_ = bytes;
  b->owned_ = true;
  return b;
}

std::shared_ptr<HostBuffer> HostBuffer::borrow(void* data, size_t bytes, std::shared_ptr<const void> owner) {
  std::shared_ptr<HostBuffer> b(new HostBuffer());
  b->data_ = data;
  b->size_ = bytes;
  b->owner_ = std::move(owner);
  return b;
}

HostBuffer::~HostBuffer() {
  if (owned_) std::free(data_);
}

bool TensorView::is_contiguous() const { return strides == contiguous_strides(shape); }

Result<Tensor> Tensor::create(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("negative dimension in shape " + shape_str(shape));
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  VDIT_ASSIGN(t.buffer_, HostBuffer::allocate(t.nbytes()));
  return t;
}

Result<Tensor> Tensor::zeros(DType dtype, Shape shape) {
  VDIT_ASSIGN(Tensor t, create(dtype, std::move(shape)));
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::from_buffer(std::shared_ptr<HostBuffer> buffer, size_t byte_offset, DType dtype, Shape shape) {
  Tensor t;
  t.buffer_ = std::move(buffer);
  t.offset_ = byte_offset;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  return t;
}

Result<Tensor> Tensor::from_f32(const std::vector<float>& values, Shape shape) {
  if (shape_numel(shape) != static_cast<int64_t>(values.size())) {
    return invalid_argument(strfmt("%zu values do not fill shape %s", values.size(), shape_str(shape).c_str()));
  }
  VDIT_ASSIGN(Tensor t, create(DType::f32, std::move(shape)));
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Result<Tensor> Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel()) {
    return invalid_argument("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Result<Tensor> Tensor::clone() const {
  VDIT_ASSIGN(Tensor t, create(dtype_, shape_));
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Result<Tensor> Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  VDIT_ASSIGN(Tensor t, create(dtype, shape_));
  size_t n = static_cast<size_t>(numel());
  if (dtype == DType::f32) {
    convert_to_f32(t.f32(), raw(), dtype_, n);
  } else if (dtype_ == DType::f32) {
    convert_from_f32(t.raw(), dtype, f32(), n);
  } else {
    VDIT_ASSIGN(Tensor tmp, to(DType::f32));
    convert_from_f32(t.raw(), dtype, tmp.f32(), n);
  }
  return t;
}

TensorView Tensor::view() const { return TensorView{raw(), dtype_, shape_, contiguous_strides(shape_)}; }

Status check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  bool ok = t.rank() == static_cast<int>(expected.size());
  for (size_t i = 0; ok && i < expected.size(); ++i) {
    if (expected[i] >= 0 && t.shape()[i] != expected[i]) ok = false;
  }
  if (ok) return Status::ok();
  std::string exp = "[";
  for (size_t i = 0; i < expected.size(); ++i) {
    if (i) exp += ", ";
    exp += expected[i] < 0 ? std::string("*") : std::to_string(expected[i]);
  }
  exp += "]";
  return invalid_argument(what + " has shape " + shape_str(t.shape()) + ", expected " + exp);
}

}  // namespace vdit
