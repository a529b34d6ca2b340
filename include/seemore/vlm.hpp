// seemore/vlm.hpp — the umbrella header: tensors, autograd, ops, layers,
// optimizers, data and checkpoints.
#pragma once

#include <seemore/autograd.hpp>
#include <seemore/config.hpp>
#include <seemore/device.hpp>
#include <seemore/ops.hpp>
#include <seemore/random.hpp>
#include <seemore/tensor.hpp>
#include <seemore/optim/adam.hpp>
#include <seemore/optim/clip.hpp>
#include <seemore/optim/optimizer.hpp>
#include <seemore/optim/schedule.hpp>
#include <seemore/optim/state.hpp>
#include <seemore/data/tokenizer.hpp>
#include <seemore/nn/vlm.hpp>
#include <seemore/nn/vlm_config.hpp>
#include <seemore/io/checkpoint.hpp>
#include <seemore/io/safetensors.hpp>
#include <seemore/data/base64.hpp>
#include <seemore/data/csv.hpp>
#include <seemore/data/dataset.hpp>
#include <seemore/data/loader.hpp>
#include <seemore/data/image.hpp>
#include <seemore/data/synthetic.hpp>
#include <seemore/io/png_write.hpp>
#include <seemore/backend/cpu/allocator.hpp>
#include <seemore/io/svg_plot.hpp>
#include <seemore/captioner.hpp>
#include <seemore/precompiled.hpp>
