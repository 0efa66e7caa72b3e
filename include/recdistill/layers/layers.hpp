// recdistill/layers/layers.hpp: every layer of the library.
//
// A layer is a pair of plain functions, *_forward and *_backward, over caller-owned,
// row-major buffers whose shapes are written next to each argument. Conventions:
//  - parameter gradients ACCUMULATE (+=), so several uses of one parameter add up;
//  - activation gradients are WRITTEN (=), except where a flag says a residual path adds in;
//  - nothing allocates inside forward/backward: models size their buffers once.
#pragma once
#include "recdistill/layers/activations.hpp"
#include "recdistill/layers/attention.hpp"
#include "recdistill/layers/dropout.hpp"
#include "recdistill/layers/embedding.hpp"
#include "recdistill/layers/layer_norm.hpp"
#include "recdistill/layers/linear.hpp"
#include "recdistill/layers/softmax_cross_entropy.hpp"
