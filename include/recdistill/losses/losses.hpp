// recdistill/losses/losses.hpp: every training objective of the library (losses/objective.hpp
// says what an objective promises the trainer).
#pragma once
#include "recdistill/losses/next_item.hpp"
#include "recdistill/losses/objective.hpp"
