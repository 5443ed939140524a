// graft's input side, in one include: data sets (list files, image folders,
// validation split), image decoding and transforms, the batch loader and the
// frozen-trunk feature cache.
#pragma once

#include "graft/dataset.h"        // IWYU pragma: export
#include "graft/feature_cache.h"  // IWYU pragma: export
#include "graft/image.h"          // IWYU pragma: export
#include "graft/loader.h"         // IWYU pragma: export
