// recdistill/layers/layers.hpp: every layer of the library.
//
// A layer is a pair of plain functions, *_forward and *_backward, templated on the backend and
// the scalar (layers::NAME<B, T>), over caller-owned, row-major buffers in the backend's memory
// whose shapes are written next to each argument; each is a short sequence of backend ops
// (backend/ops.hpp). Conventions:
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
