// graft: transfer learning on the CPU. Subcommands live in cmd_*.cpp.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"graft: fine-tune pretrained models on the CPU"};
  app.require_subcommand(1);
  std::function<int()> action;
  graft::cli::add_inspect_command(app, action);
  graft::cli::add_run_command(app, action);
  graft::cli::add_train_command(app, action);
  graft::cli::add_predict_command(app, action);
  graft::cli::add_eval_command(app, action);
  graft::cli::add_export_command(app, action);
  graft::cli::add_bench_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action();
  } catch (const graft::Error& e) {
    std::cerr << "graft: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "graft: internal error: " << e.what() << "\n";
    return 3;
  }
}
