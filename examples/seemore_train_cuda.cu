// seemore-train-cuda: seemore_train.cpp compiled by nvcc, so that --device cuda
// runs on the GPU (seemore-train hands over to this binary for it).
#include "seemore_train.cpp"
