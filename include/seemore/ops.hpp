// seemore/ops.hpp — every differentiable op.
#pragma once

#include <seemore/ops/activation.hpp>
#include <seemore/ops/attention.hpp>
#include <seemore/ops/conv.hpp>
#include <seemore/ops/dropout.hpp>
#include <seemore/ops/elementwise.hpp>
#include <seemore/ops/layernorm.hpp>
#include <seemore/ops/loss.hpp>
#include <seemore/ops/matmul.hpp>
#include <seemore/ops/reduce.hpp>
#include <seemore/ops/shape.hpp>
#include <seemore/ops/softmax.hpp>
