// graft run MODEL --input FILE.npy --out DIR: runs a model on .npy inputs and
// writes every graph output as DIR/<output name>.npy.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "graft/npy.h"

namespace graft::cli {

namespace {

std::string file_safe(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  return s;
}

int run(const std::string& path, const std::vector<std::string>& input_specs, const std::string& out_dir) {
  Graph g = load_model(path);
  TensorMap inputs;
  for (const std::string& spec : input_specs) {
    auto eq = spec.find('=');
    bool named = eq != std::string::npos && g.find_input(spec.substr(0, eq));
    std::string name, file = spec;
    if (named) {
      name = spec.substr(0, eq);
      file = spec.substr(eq + 1);
    } else {
      GRAFT_CHECK(inputs.size() < g.inputs.size(), kInvalidArgument,
                  "more --input files than the model's {} inputs", g.inputs.size());
      name = g.inputs[inputs.size()].name;
    }
    inputs[name] = load_npy(file);
  }
  Session session(std::move(g));
  TensorMap outputs = session.run(inputs);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  GRAFT_CHECK(!ec, kIO, "{}: cannot create output folder: {}", out_dir, ec.message());
  for (const ValueDecl& d : session.graph().outputs) {
    std::string file = (std::filesystem::path(out_dir) / (file_safe(d.name) + ".npy")).string();
    save_npy(file, outputs.at(d.name));
    std::cout << fmt::format("{}  {} [{}]\n", file, dtype_name(outputs.at(d.name).dtype()),
                             shape_str(outputs.at(d.name).shape()));
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("run", "Run a model on .npy inputs, write outputs as .npy");
  auto path = std::make_shared<std::string>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("MODEL", *path, "Model file (.onnx)")->required();
  cmd->add_option("--input", *inputs, "FILE.npy for the next input, or NAME=FILE.npy")->required();
  cmd->add_option("--out", *out, "Folder for the outputs")->required();
  cmd->callback([&action, path, inputs, out] {
    action = [path, inputs, out] { return run(*path, *inputs, *out); };
  });
}

}  // namespace graft::cli
