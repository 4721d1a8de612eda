// Helpers shared by the io tests: bit-exact comparison of two weight files and whole-file reads.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/tensor_file.h"

namespace vdit::test {

// Every tensor of `want` is in `got` (and nothing else) with the same dtype, shape and bytes.
inline void expect_same_tensors(const TensorFile& got, const TensorFile& want) {
  EXPECT_EQ(got.entries().size(), want.entries().size()) << got.path() << " vs " << want.path();
  for (const TensorEntry& w : want.entries()) {
    const TensorEntry* g = got.find(w.name);
    ASSERT_NE(g, nullptr) << got.path() << ": missing \"" << w.name << "\"";
    EXPECT_EQ(dtype_name(g->dtype), std::string(dtype_name(w.dtype))) << w.name;
    EXPECT_EQ(shape_str(g->shape), shape_str(w.shape)) << w.name;
    ASSERT_EQ(g->nbytes, w.nbytes) << w.name;
    size_t first_diff = w.nbytes;
    for (size_t i = 0; i < w.nbytes; ++i) {
      if (g->data[i] != w.data[i]) {
        first_diff = i;
        break;
      }
    }
    EXPECT_EQ(first_diff, w.nbytes) << got.path() << ": \"" << w.name << "\" differs first at byte " << first_diff;
  }
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace vdit::test
