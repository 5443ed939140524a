#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

void register_activation_ops(OpRegistry& r) { (void)r; }

}  // namespace graft::ops
