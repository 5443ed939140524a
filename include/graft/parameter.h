// A trainable tensor and its gradient. `value` shares storage with the
// graph's initializer of the same name, so an optimizer step updates the
// graph that is later exported.
#pragma once

#include <string>
#include <vector>

#include "graft/tensor.h"

namespace graft {

struct Parameter {
  std::string name;
  Tensor value;
  Tensor grad;  // same shape and dtype as value; accumulated by backward
};

using Parameters = std::vector<Parameter>;

}  // namespace graft
