// Tells the io tests that this build reads ONNX (compiled only when VDIT_HAVE_ONNX is on).
namespace vdit::test {
bool onnx_built() { return true; }
}  // namespace vdit::test
