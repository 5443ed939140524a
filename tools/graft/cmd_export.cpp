// graft export CHECKPOINT --out model.onnx: the served model (best epoch's
// weights, probabilities output, class names) from a graft train checkpoint.
#include <iostream>

#include "commands.h"
#include "graft/onnx.h"

namespace graft::cli {

void add_export_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("export", "Write the fine-tuned model of a graft train checkpoint as ONNX");
  auto ckpt = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("CHECKPOINT", *ckpt, "OUT/checkpoint.ckpt of a graft train run")->required();
  cmd->add_option("--out", *out, "The ONNX file to write")->required();
  cmd->callback([&action, ckpt, out] {
    action = [=] {
      save_onnx(model_from_checkpoint(*ckpt), *out);
      std::cout << "wrote " << *out << "\n";
      return 0;
    };
  });
}

}  // namespace graft::cli
