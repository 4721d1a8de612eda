// The gathered block-sparse CUDA kernel (block_sparse_gathered.h) against the CPU reference
// gathered_attention_cpu (attention/methods/vmoba_kernel.h) on the same bf16/f16-rounded inputs, with the
// flash-attention tolerance of sparse_case.h (the naive same-precision implementation here walks the view's
// lists directly, in double with P rounded; it is also checked against the reference, so the two
// formulations of the contract must agree). Every case runs both main loops (mma.sync; wgmma where the
// build has it) on: pad slots scattered at random and Draft-like padded regions (30x52 frames in 8x16 and
// 8x8 windows padded to whole blocks, text tokens after them), per-head and shared lists, launch orders
// (longest first, identity, random), the chunk rule of masked blocks (1, 3 and 4 selection words, full blocks
// where the rule keeps every pair), rows listing only their own block, queries that keep no key (out 0,
// LSE -inf), and the validator's and the call's error statuses.
#include <gtest/gtest.h>

#include <numeric>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/methods/draft_plan.h"
#include "attention/methods/vmoba_kernel.h"
#include "tests/cuda_attention_sparse/sparse_case.h"

using namespace vdit;
using namespace vdit::attn;

namespace {

struct GatheredCase {
  int HD = 128;
  int NH = 2;
  int block = 128;
  DeviceDType dtype = DeviceDType::bf16;
  int64_t L = 0;
  std::vector<int32_t> slots;  // [Lp]
  bool head_shared = false;
  std::vector<int64_t> full_ptr, part_ptr;
  std::vector<int32_t> full_idx, part_idx;
  std::vector<int32_t> items;  // empty: identity order (null pointer)
  int words = 0;               // 0: no chunk rule
  std::vector<int32_t> chunk_of;
  std::vector<uint32_t> select;  // [NH, Lp, words]
  bool lse = true;
  uint32_t seed = 1;
  std::string desc;

  int64_t Lp() const { return static_cast<int64_t>(slots.size()); }
  int64_t nq() const { return (Lp() + block - 1) / block; }
  int64_t row(int h, int64_t qb) const { return (head_shared ? 0 : h) * nq() + qb; }
  bool keeps(int h, int64_t i, int64_t j) const {
    const int32_t c = chunk_of[static_cast<size_t>(j)];
    return (select[static_cast<size_t>((h * Lp() + i) * words + c / 32)] >> (c % 32)) & 1u;
  }
  std::string repro() const {
    return strfmt("gathered(hd=%d, L=%lld, Lp=%lld, NH=%d, B=%d, %s, %s, lists=%s, items=%s, chunk words=%d, "
                  "seed=%u)",
                  HD, static_cast<long long>(L), static_cast<long long>(Lp()), NH, block,
                  dtype == DeviceDType::bf16 ? "bf16" : "f16", desc.c_str(), head_shared ? "shared" : "per-head",
                  items.empty() ? "identity" : "given", words, seed);
  }
};

// Pads scattered at random: the L tokens in a random order over Lp positions, Lp − L of them pads.
std::vector<int32_t> scattered_slots(int64_t L, int64_t Lp, std::mt19937& rng) {
  std::vector<int32_t> s(static_cast<size_t>(Lp), -1);
  std::iota(s.begin(), s.begin() + L, 0);
  std::shuffle(s.begin(), s.end(), rng);
  return s;
}

// DraftAttention's reordered sequence: ph x pw regions of each frame (edge regions padded), then text.
std::vector<int32_t> draft_slots(VideoGrid grid, int ph, int pw, int64_t text, int64_t* L) {
  auto geo = draft_geometry(grid, text, false, ph, pw);
  EXPECT_TRUE(geo.is_ok()) << geo.status().to_string();
  *L = geo->L;
  return geo->slots;
}

// Lists: each (row, key block) listed with probability `density` (the diagonal always; `self_only` rows
// only the diagonal), blocks holding pads masked, others masked with probability `part_share`; with the
// chunk rule a block is full only when the rule keeps every pair of real tokens (else masked).
void make_lists(GatheredCase& c, double density, double part_share, double self_only, std::mt19937& rng) {
  const int64_t nq = c.nq(), B = c.block, Lp = c.Lp();
  std::vector<uint8_t> has_pad(static_cast<size_t>(nq), 0);
  for (int64_t n = 0; n < Lp; ++n)
    if (c.slots[static_cast<size_t>(n)] < 0) has_pad[static_cast<size_t>(n / B)] = 1;
  const int list_heads = c.head_shared ? 1 : c.NH;
  std::uniform_real_distribution<double> ud(0, 1);
  c.full_ptr.assign(1, 0);
  c.part_ptr.assign(1, 0);
  c.full_idx.clear();
  c.part_idx.clear();
  for (int lh = 0; lh < list_heads; ++lh) {
    for (int64_t qb = 0; qb < nq; ++qb) {
      const bool only_self = ud(rng) < self_only;
      for (int64_t kb = 0; kb < nq; ++kb) {
        const bool on = kb == qb || (!only_self && ud(rng) < density);
        if (!on) continue;
        bool masked = has_pad[static_cast<size_t>(kb)] || ud(rng) < part_share;
        if (!masked && c.words > 0) {  // full only if every head of the row keeps every pair
          for (int h = 0; h < c.NH && !masked; ++h) {
            if (c.row(h, qb) != lh * nq + qb) continue;
            for (int64_t i = qb * B; i < std::min(Lp, qb * B + B) && !masked; ++i) {
              if (c.slots[static_cast<size_t>(i)] < 0) continue;
              for (int64_t j = kb * B; j < std::min(Lp, kb * B + B); ++j) {
                if (!c.keeps(h, i, j)) {
                  masked = true;
                  break;
                }
              }
            }
          }
        }
        (masked ? c.part_idx : c.full_idx).push_back(static_cast<int32_t>(kb));
      }
      c.full_ptr.push_back(static_cast<int64_t>(c.full_idx.size()));
      c.part_ptr.push_back(static_cast<int64_t>(c.part_idx.size()));
    }
  }
}

enum class Order { identity, longest_first, random };

void make_items(GatheredCase& c, Order order, std::mt19937& rng) {
  const int64_t nq = c.nq();
  c.items.clear();
  if (order == Order::identity) return;
  c.items.resize(static_cast<size_t>(c.NH * nq));
  std::iota(c.items.begin(), c.items.end(), 0);
  if (order == Order::random) {
    std::shuffle(c.items.begin(), c.items.end(), rng);
    return;
  }
  auto len = [&](int32_t it) {
    const int64_t r = c.row(static_cast<int>(it / nq), it % nq);
    return (c.full_ptr[r + 1] - c.full_ptr[r]) + (c.part_ptr[r + 1] - c.part_ptr[r]);
  };
  for (int h = 0; h < c.NH; ++h) {
    std::stable_sort(c.items.begin() + h * nq, c.items.begin() + (h + 1) * nq,
                     [&](int32_t a, int32_t b) { return len(a) > len(b); });
  }
}

// The chunk rule: contiguous chunks of `chunk_len` positions (VMoBA-like), `chunks` ids cycling; each
// query keeps its own chunk and each other one with probability `p`; a `none_share` of the queries keep none.
void make_chunks(GatheredCase& c, int chunks, int64_t chunk_len, double p, double none_share, std::mt19937& rng) {
  const int64_t Lp = c.Lp();
  c.words = (chunks + 31) / 32;
  c.chunk_of.resize(static_cast<size_t>(Lp));
  for (int64_t j = 0; j < Lp; ++j) c.chunk_of[static_cast<size_t>(j)] = static_cast<int32_t>((j / chunk_len) % chunks);
  c.select.assign(static_cast<size_t>(c.NH * Lp * c.words), 0u);
  std::uniform_real_distribution<double> ud(0, 1);
  for (int h = 0; h < c.NH; ++h) {
    for (int64_t i = 0; i < Lp; ++i) {
      if (ud(rng) < none_share) continue;
      uint32_t* w = c.select.data() + (h * Lp + i) * c.words;
      for (int ch = 0; ch < chunks; ++ch) {
        if (ch == c.chunk_of[static_cast<size_t>(i)] || ud(rng) < p) w[ch / 32] |= 1u << (ch % 32);
      }
    }
  }
}

// Naive same-precision implementation from the lists (double, P rounded to the io type, output rounded).
std::vector<float> naive_outputs(const GatheredCase& c, const std::vector<float>& q, const std::vector<float>& k,
                                 const std::vector<float>& v) {
  const int64_t L = c.L, Lp = c.Lp(), B = c.block, nq = c.nq();
  const int NH = c.NH, HD = c.HD;
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const double scale = 1.0 / std::sqrt(static_cast<double>(HD));
  std::vector<float> out(static_cast<size_t>(L * ld), 0.f);
  parallel_for(NH * nq, [&](int64_t job) {
    const int h = static_cast<int>(job / nq);
    const int64_t qb = job % nq, r = c.row(h, qb);
    std::vector<int64_t> keys;
    std::vector<double> s, acc(static_cast<size_t>(HD));
    for (int64_t i = qb * B; i < std::min(Lp, qb * B + B); ++i) {
      const int32_t t = c.slots[static_cast<size_t>(i)];
      if (t < 0) continue;
      keys.clear();
      for (int pass = 0; pass < 2; ++pass) {
        const auto& ptr = pass == 0 ? c.full_ptr : c.part_ptr;
        const auto& idx = pass == 0 ? c.full_idx : c.part_idx;
        for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
          const int64_t kb = idx[static_cast<size_t>(e)];
          for (int64_t j = kb * B; j < std::min(Lp, kb * B + B); ++j) {
            if (c.slots[static_cast<size_t>(j)] < 0) continue;
            if (pass == 1 && c.words > 0 && !c.keeps(h, i, j)) continue;
            keys.push_back(c.slots[static_cast<size_t>(j)]);
          }
        }
      }
      const float* qr = q.data() + t * ld + h * HD;
      s.resize(keys.size());
      double mx = -INFINITY;
      for (size_t x = 0; x < keys.size(); ++x) {
        const float* kr = k.data() + keys[x] * ld + h * HD;
        double dot = 0;
        for (int d = 0; d < HD; ++d) dot += static_cast<double>(qr[d]) * kr[d];
        s[x] = dot * scale;
        mx = std::max(mx, s[x]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (size_t x = 0; x < keys.size(); ++x) {
        const double p = std::exp(s[x] - mx);
        sum += p;
        const float pr = test::from_io(test::to_io(static_cast<float>(p), c.dtype), c.dtype);
        const float* vr = v.data() + keys[x] * ld + h * HD;
        for (int d = 0; d < HD; ++d) acc[static_cast<size_t>(d)] += pr * vr[d];
      }
      for (int d = 0; d < HD; ++d) {
        const float o = sum > 0 ? static_cast<float>(acc[static_cast<size_t>(d)] / sum) : 0.f;
        out[static_cast<size_t>(t * ld + h * HD + d)] = test::from_io(test::to_io(o, c.dtype), c.dtype);
      }
    }
  });
  return out;
}

struct DeviceView {
  DeviceBuffer slots, full_ptr, full_idx, part_ptr, part_idx, items, chunk_of, select;
  DeviceGatheredView view;
};

Status upload_view(const GatheredCase& c, DeviceView* d) {
  VDIT_ASSIGN(d->slots, test::to_device(c.slots));
  VDIT_ASSIGN(d->full_ptr, test::to_device(c.full_ptr));
  VDIT_ASSIGN(d->full_idx, test::to_device(c.full_idx));
  VDIT_ASSIGN(d->part_ptr, test::to_device(c.part_ptr));
  VDIT_ASSIGN(d->part_idx, test::to_device(c.part_idx));
  VDIT_ASSIGN(d->items, test::to_device(c.items));
  VDIT_ASSIGN(d->chunk_of, test::to_device(c.chunk_of));
  VDIT_ASSIGN(d->select, test::to_device(c.select));
  DeviceGatheredView& v = d->view;
  v.block = c.block;
  v.positions = c.Lp();
  v.slots = d->slots.as<int32_t>();
  v.head_shared = c.head_shared;
  v.full_ptr = d->full_ptr.as<int64_t>();
  v.full_idx = d->full_idx.as<int32_t>();
  v.part_ptr = d->part_ptr.as<int64_t>();
  v.part_idx = d->part_idx.as<int32_t>();
  v.items = c.items.empty() ? nullptr : d->items.as<int32_t>();
  if (c.words > 0) {
    v.chunk_of = d->chunk_of.as<int32_t>();
    v.select = d->select.as<uint32_t>();
    v.select_words = c.words;
  }
  return Status::ok();
}

void run_gathered_case(const GatheredCase& c) {
  const int64_t L = c.L;
  const int NH = c.NH, HD = c.HD;
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const size_t n = static_cast<size_t>(L * ld), nl = static_cast<size_t>(NH) * L;
  const std::string repro = c.repro();
  std::mt19937 rng(c.seed);
  std::vector<uint16_t> qb, kb, vb;
  std::vector<float> q, k, v;
  test::make_io(qb, q, n, 2.0f, c.dtype, rng);
  test::make_io(kb, k, n, 1.0f, c.dtype, rng);
  test::make_io(vb, v, n, 1.0f, c.dtype, rng);
  float vmax = 0;
  for (float x : v) vmax = std::max(vmax, std::fabs(x));
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));

  // Reference: gathered_attention_cpu with the view's lists and rule.
  std::vector<float> ref(n, NAN), ref_lse(nl, NAN);
  GatheredOrder order;
  order.block = c.block;
  order.slots = c.slots;
  auto list = [&](int h, int64_t qblk, std::vector<GatheredKeyBlock>* blocks) {
    const int64_t r = c.row(h, qblk);
    for (int64_t e = c.full_ptr[r]; e < c.full_ptr[r + 1]; ++e) blocks->push_back({c.full_idx[e], false});
    for (int64_t e = c.part_ptr[r]; e < c.part_ptr[r + 1]; ++e) blocks->push_back({c.part_idx[e], true});
    std::sort(blocks->begin(), blocks->end(),
              [](const GatheredKeyBlock& a, const GatheredKeyBlock& b) { return a.block < b.block; });
  };
  auto keep = [&](int h, int64_t i, int64_t j) { return c.words == 0 || c.keeps(h, i, j); };
  gathered_attention_cpu(ref.data(), ref_lse.data(), q.data(), k.data(), v.data(), L, NH, HD, scale, order, list, keep);
  const std::vector<float> naive = naive_outputs(c, q, k, v);
  // The two CPU formulations agree: |naive − ref| ≤ u·max|v| (P rounding) + u·|ref| (output rounding).
  {
    const double u = c.dtype == DeviceDType::bf16 ? 1.0 / 256 : 1.0 / 2048;
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; ++i) {
      const double r = std::fabs(double(naive[i]) - ref[i]) / (2 * u * std::fabs(ref[i]) + 2 * u * vmax + 1e-5);
      if (!(r <= worst)) {
        worst = std::isnan(r) ? INFINITY : r;
        wi = i;
      }
    }
    ASSERT_LE(worst, 1.0) << repro << ": the CPU reference and the naive lists walk disagree at token " << wi / ld
                          << " head " << wi % ld / HD << " (ref " << ref[wi] << ", naive " << naive[wi] << ")";
  }

  DeviceView dv;
  Status st = upload_view(c, &dv);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  auto dq = test::to_device(qb), dk = test::to_device(kb), dvv = test::to_device(vb);
  auto dout = test::to_device(std::vector<uint16_t>(n, 0xFFFFu));  // NaN: unwritten tokens fail
  auto dlse = test::to_device(std::vector<float>(nl, NAN));
  ASSERT_TRUE(dq && dk && dvv && dout && dlse) << repro;
  DeviceQKV call = test::device_call(*dq, *dk, *dvv, *dout, c.lse ? dlse->as<float>() : nullptr, L, NH, HD, c.dtype);
  st = block_sparse_gathered_validate(call, dv.view);
  ASSERT_TRUE(st.is_ok()) << repro << ": the test's view is invalid: " << st.to_string();

  std::vector<BlockSparseLoop> loops = {BlockSparseLoop::mma_sync};
  if (block_sparse_wgmma_available()) loops.push_back(BlockSparseLoop::wgmma);
  for (BlockSparseLoop loop : loops) {
    const std::string rl = repro + (loop == BlockSparseLoop::wgmma ? ", loop=wgmma" : ", loop=mma_sync");
    ASSERT_TRUE(dout->copy_from_host(std::vector<uint16_t>(n, 0xFFFFu).data(), n * 2).is_ok());
    ASSERT_TRUE(dlse->copy_from_host(std::vector<float>(nl, NAN).data(), nl * 4).is_ok());
    BlockSparseOptions opts;
    opts.loop = loop;
    st = block_sparse_gathered_cuda(call, dv.view, opts);
    ASSERT_TRUE(st.is_ok()) << rl << ": " << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << rl << ": kernel fault";
    std::vector<uint16_t> outb(n);
    std::vector<float> gl(nl);
    ASSERT_TRUE(dout->copy_to_host(outb.data(), n * 2).is_ok()) << rl;
    ASSERT_TRUE(dlse->copy_to_host(gl.data(), nl * 4).is_ok()) << rl;
    test::compare_outputs(rl, L, NH, HD, c.dtype, c.lse, outb, gl, ref, ref_lse, naive);
  }
}

const DeviceDType kTypes[] = {DeviceDType::bf16, DeviceDType::f16};

}  // namespace

TEST(BlockSparseGatheredCuda, ScatteredPadsAllInstances) {
  uint32_t seed = 1;
  for (int HD : {64, 128}) {
    for (DeviceDType dt : kTypes) {
      for (int block : {64, 128}) {
        GatheredCase c;
        c.HD = HD;
        c.dtype = dt;
        c.block = block;
        c.seed = seed++;
        std::mt19937 rng(c.seed * 7919u + 5);
        c.L = 1500 + 37 * (c.seed % 5);
        c.slots = scattered_slots(c.L, c.L + c.L / 5 + 11, rng);  // ~20 % pads, Lp not a block multiple
        c.head_shared = c.seed % 3 == 0;
        make_lists(c, 0.3, 0.3, 0.05, rng);
        make_items(c, c.seed % 2 ? Order::longest_first : Order::random, rng);
        c.lse = c.seed % 4 != 2;
        c.desc = "scattered pads";
        run_gathered_case(c);
      }
    }
  }
}

TEST(BlockSparseGatheredCuda, DraftPaddedRegions) {
  struct P {
    int ph, pw;
    int HD;
    DeviceDType dt;
    int64_t text;
    Order order;
    bool shared;
  };
  const P cases[] = {
      {8, 16, 128, DeviceDType::bf16, 77, Order::longest_first, false},
      {8, 16, 64, DeviceDType::f16, 0, Order::identity, true},
      {8, 8, 128, DeviceDType::f16, 40, Order::random, false},
      {8, 8, 64, DeviceDType::bf16, 0, Order::longest_first, false},
  };
  uint32_t seed = 100;
  for (const P& p : cases) {
    GatheredCase c;
    c.HD = p.HD;
    c.dtype = p.dt;
    c.block = p.ph * p.pw;
    c.seed = seed++;
    c.head_shared = p.shared;
    std::mt19937 rng(c.seed);
    c.slots = draft_slots({2, 30, 52}, p.ph, p.pw, p.text, &c.L);  // 30x52 frames padded to 32x64 / 32x56
    make_lists(c, 0.35, 0.0, 0.1, rng);
    make_items(c, p.order, rng);
    c.desc = strfmt("draft regions %dx%d of 2x30x52, text %lld", p.ph, p.pw, static_cast<long long>(p.text));
    run_gathered_case(c);
  }
}

TEST(BlockSparseGatheredCuda, ChunkRule) {
  struct P {
    int chunks;
    int64_t chunk_len;
    int HD, block;
    DeviceDType dt;
    bool draft;
  };
  const P cases[] = {
      {20, 96, 128, 128, DeviceDType::bf16, false},  // 1 selection word
      {70, 31, 128, 64, DeviceDType::f16, true},     // 3 words, chunks cut across blocks
      {128, 17, 64, 128, DeviceDType::bf16, true},   // 4 words (the maximum)
      {40, 64, 64, 64, DeviceDType::f16, false},     // block-aligned chunks: some full blocks pass the rule
  };
  uint32_t seed = 200;
  for (const P& p : cases) {
    GatheredCase c;
    c.HD = p.HD;
    c.dtype = p.dt;
    c.block = p.block;
    c.seed = seed++;
    std::mt19937 rng(c.seed);
    if (p.draft) {
      c.slots = draft_slots({2, 30, 52}, 8, p.block / 8, 0, &c.L);
    } else {
      c.L = 2100;
      c.slots = scattered_slots(c.L, 2300, rng);
    }
    make_chunks(c, p.chunks, p.chunk_len, 0.5, 0.03, rng);
    make_lists(c, 0.4, 0.5, 0.05, rng);
    make_items(c, Order::longest_first, rng);
    c.desc = strfmt("chunk rule (%d chunks of %lld)%s", p.chunks, static_cast<long long>(p.chunk_len),
                    p.draft ? ", draft regions" : ", scattered pads");
    run_gathered_case(c);
  }
}

TEST(BlockSparseGatheredCuda, SelfOnlyRowsAndEmptyQueries) {
  uint32_t seed = 300;
  for (int block : {64, 128}) {
    for (bool chunked : {false, true}) {
      GatheredCase c;
      c.HD = 128;
      c.dtype = block == 64 ? DeviceDType::f16 : DeviceDType::bf16;
      c.block = block;
      c.seed = seed++;
      std::mt19937 rng(c.seed);
      c.L = 1000;
      c.slots = scattered_slots(c.L, 1200, rng);
      if (chunked) make_chunks(c, 33, 50, 0.3, 0.2, rng);  // a fifth of the queries keep nothing
      make_lists(c, 0.3, 0.5, 1.0, rng);                    // every row lists only its own block
      make_items(c, Order::identity, rng);
      c.desc = chunked ? "self only, empty queries" : "self only";
      run_gathered_case(c);
    }
  }
}

TEST(BlockSparseGatheredCuda, ValidatorAndErrors) {
  GatheredCase c;
  c.HD = 64;
  c.block = 64;
  c.seed = 400;
  std::mt19937 rng(c.seed);
  c.L = 500;
  c.slots = scattered_slots(c.L, 600, rng);
  make_lists(c, 0.5, 0.2, 0.0, rng);
  DeviceView dv;
  ASSERT_TRUE(upload_view(c, &dv).is_ok());
  auto buf = DeviceBuffer::allocate(static_cast<size_t>(c.L) * c.NH * c.HD * 2);
  ASSERT_TRUE(buf.is_ok());
  DeviceQKV call;
  call.q = call.k = call.v = buf->data();
  call.out = buf->data();
  call.L = c.L;
  call.NH = c.NH;
  call.HD = c.HD;
  EXPECT_TRUE(block_sparse_gathered_validate(call, dv.view).is_ok());
  EXPECT_TRUE(block_sparse_gathered_cuda(call, dv.view).is_ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  auto expect_invalid = [&](GatheredCase broken, const char* what) {
    DeviceView bv;
    ASSERT_TRUE(upload_view(broken, &bv).is_ok());
    EXPECT_EQ(block_sparse_gathered_validate(call, bv.view).code(), StatusCode::invalid_argument) << what;
  };
  {
    GatheredCase b = c;  // a block holding a pad slot listed as full
    int64_t pad_block = -1;
    for (int64_t n = 0; n < b.Lp() && pad_block < 0; ++n)
      if (b.slots[n] < 0) pad_block = n / b.block;
    b.full_idx.insert(b.full_idx.begin(), 0);
    for (size_t r = 1; r < b.full_ptr.size(); ++r) ++b.full_ptr[r];
    b.full_idx[0] = static_cast<int32_t>(pad_block);
    b.part_ptr.assign(b.part_ptr.size(), 0);
    b.part_idx.clear();
    // row 0 may now list pad_block twice or unsorted; either way invalid.
    expect_invalid(b, "pad block listed as full");
  }
  {
    GatheredCase b = c;
    b.slots[3] = b.slots[4];  // a token twice, another missing
    expect_invalid(b, "duplicate slot");
  }
  {
    GatheredCase b = c;
    ASSERT_GE(b.part_ptr[1], 2);
    std::swap(b.part_idx[0], b.part_idx[1]);
    expect_invalid(b, "unsorted row");
  }
  {
    GatheredCase b = c;
    b.items.assign(static_cast<size_t>(b.NH * b.nq()), 0);
    expect_invalid(b, "items not a permutation");
  }

  DeviceGatheredView v = dv.view;
  v.slots = nullptr;
  EXPECT_EQ(block_sparse_gathered_cuda(call, v).code(), StatusCode::invalid_argument);
  v = dv.view;
  v.positions = c.L - 1;
  EXPECT_EQ(block_sparse_gathered_cuda(call, v).code(), StatusCode::invalid_argument);
  v = dv.view;
  v.select = dv.select.as<uint32_t>();  // select without chunk_of
  EXPECT_EQ(block_sparse_gathered_cuda(call, v).code(), StatusCode::invalid_argument);
  v = dv.view;
  v.chunk_of = dv.slots.as<int32_t>();
  v.select = dv.select.as<uint32_t>();
  v.select_words = 5;
  EXPECT_EQ(block_sparse_gathered_cuda(call, v).code(), StatusCode::invalid_argument);
  v = dv.view;
  v.block = 32;
  EXPECT_EQ(block_sparse_gathered_cuda(call, v).code(), StatusCode::unsupported);
  DeviceQKV bad = call;
  bad.HD = 96;
  EXPECT_EQ(block_sparse_gathered_cuda(bad, dv.view).code(), StatusCode::unsupported);
  bad = call;
  bad.out = nullptr;
  EXPECT_EQ(block_sparse_gathered_cuda(bad, dv.view).code(), StatusCode::invalid_argument);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}
