// Launcher of the test kernel in scale_kernel.cu (0 = success).
#pragma once
int launch_scale_add_index(float* y, const float* x, float a, int n);
