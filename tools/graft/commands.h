// The graft subcommands. Each add_*_command registers its options on `app`
// and, when chosen, sets `action` to the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "graft/session.h"
#include "graft/transfer.h"  // load_model

namespace graft::cli {

void add_inspect_command(CLI::App& app, std::function<int()>& action);
void add_run_command(CLI::App& app, std::function<int()>& action);
void add_train_command(CLI::App& app, std::function<int()>& action);
void add_predict_command(CLI::App& app, std::function<int()>& action);
void add_eval_command(CLI::App& app, std::function<int()>& action);
void add_export_command(CLI::App& app, std::function<int()>& action);
void add_bench_command(CLI::App& app, std::function<int()>& action);

// "NAME=1x3x224x224" or "1x3x224x224" (the first input) into a shape map.
ShapeMap parse_input_shapes(const Graph& graph, const std::vector<std::string>& specs);

}  // namespace graft::cli
