// seemore-caption-cuda: seemore_caption.cpp compiled by nvcc, so that --device
// cuda runs on the GPU (seemore-caption hands over to this binary for it).
#include "seemore_caption.cpp"
