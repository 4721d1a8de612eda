// The "dense" method: exact attention on every call (the baseline every sparse method is compared with).
// It reads only the common keys; its schedule is irrelevant because every call is dense anyway.
#include "attention/methods/method.h"

namespace vdit::attn {
namespace {

class DenseMethod : public AttentionMethod {
 protected:
  Status configure_method(ConfigReader&) override { return Status::ok(); }
  bool is_dense(const AttentionCall&) const override { return true; }
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(dense, "exact dense attention (tiled online softmax)", vdit::attn::DenseMethod);
