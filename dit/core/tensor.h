// Host tensors: `Tensor` owns (or shares) a contiguous host buffer with a dtype and shape; `TensorView`
// is a non-owning strided view. CPU compute runs on f32 tensors; other dtypes exist for storage and
// I/O. Device buffers live in dit/core/device_buffer.h (CUDA builds only).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "dit/core/dtype.h"
#include "dit/core/status.h"

namespace vdit {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[16, 3, 8, 12]"
// Row-major (C-order) strides in elements.
Shape contiguous_strides(const Shape& s);

// 64-byte aligned host allocation; `nullptr` data with a non-zero size never escapes (allocation
// failure is reported as out_of_memory by Tensor::create).
class HostBuffer {
 public:
  static Result<std::shared_ptr<HostBuffer>> allocate(size_t bytes);
  // A buffer that borrows memory kept alive by `owner` (e.g. a memory-mapped file).
  static std::shared_ptr<HostBuffer> borrow(void* data, size_t bytes, std::shared_ptr<const void> owner);
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  HostBuffer() = default;
  void* data_ = nullptr;
  size_t size_ = 0;
  bool owned_ = false;
  std::shared_ptr<const void> owner_;
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Shape shape;
  Shape strides;  // in elements

  int64_t numel() const { return shape_numel(shape); }
  bool is_contiguous() const;
};

class Tensor {
 public:
  Tensor() = default;
  // Allocates an uninitialized tensor.
  static Result<Tensor> create(DType dtype, Shape shape);
  static Result<Tensor> zeros(DType dtype, Shape shape);
  // Wraps memory owned elsewhere (kept alive through `buffer`).
  static Tensor from_buffer(std::shared_ptr<HostBuffer> buffer, size_t byte_offset, DType dtype, Shape shape);
  // Copies `values` into a new f32 tensor of `shape` (sizes must agree).
  static Result<Tensor> from_f32(const std::vector<float>& values, Shape shape);

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i < 0 ? i + rank() : i)]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const { return static_cast<uint8_t*>(buffer_->data()) + offset_; }
  template <class T> T* data() const { return static_cast<T*>(raw()); }
  float* f32() const { return data<float>(); }

  // Same data, new shape (numel must match); shares the buffer.
  Result<Tensor> reshape(Shape shape) const;
  // Deep copy.
  Result<Tensor> clone() const;
  // Converted copy (or a shared copy when the dtype already matches).
  Result<Tensor> to(DType dtype) const;
  TensorView view() const;

 private:
  std::shared_ptr<HostBuffer> buffer_;
  size_t offset_ = 0;
  DType dtype_ = DType::f32;
  Shape shape_;
};

// Checks that `t` has `expected` shape, where -1 matches any size; the message names `what`.
Status check_shape(const Tensor& t, const Shape& expected, const std::string& what);

}  // namespace vdit
