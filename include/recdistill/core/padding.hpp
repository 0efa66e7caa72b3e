// recdistill/core/padding.hpp: which side of a fixed-length row a backbone pads.
#pragma once

namespace recdistill {

// right: real items in slots 0..len-1 (RecBole); left: newest item in slot L-1 (kang205,
// pmixer). Aggregators and evaluation use the mask and recency, never absolute slots.
enum class PaddingSide { right, left };

}  // namespace recdistill
