// Tells the io tests that this build has no ONNX reader (compiled only when VDIT_HAVE_ONNX is off).
namespace vdit::test {
bool onnx_built() { return false; }
}  // namespace vdit::test
