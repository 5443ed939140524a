// Helpers shared by the tests: a tiny ONNX model built in code, an assertion
// that a call throws a graft::Error of a given kind and text, a one-node graph
// run through a Session, and a shell command run for its status and output.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>

#include <unistd.h>
#include <map>
#include <string>
#include <vector>

#include "graft/error.h"
#include "graft/graph.h"
#include "graft/session.h"
#include "graft/tensor.h"

namespace graft::test {

// A path in the temporary folder unique to this test process, so that test
// runs side by side never share files.
inline std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
}


// y = x + w, with x of shape [batch, 3] and w a float initializer [3].
inline onnx::ModelProto add_model(int opset = 13, int ir = 8) {
  onnx::ModelProto m;
  m.set_ir_version(ir);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("add");
  auto* x = g->add_input();
  x->set_name("x");
  auto* tt = x->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(3);
  auto* y = g->add_output();
  y->set_name("y");
  y->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  for (float v : {1.f, 2.f, 3.f}) w->add_float_data(v);
  auto* n = g->add_node();
  n->set_name("plus");
  n->set_op_type("Add");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  return m;
}

// Expects fn() to throw an Error of `kind` whose message contains `text`.
inline void expect_error(const std::function<void()>& fn, ErrorKind kind, const std::string& text) {
  try {
    fn();
    FAIL() << "no error; expected one containing: " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// One node of type `op` with inputs x0, x1, ... and outputs y0, y1, ...
struct OneNode {
  std::string op;
  int opset = 13;
  std::map<std::string, Attribute> attrs = {};
  std::vector<Tensor> inputs = {};  // an undefined tensor is an absent optional input
  std::vector<int> constant = {};   // indices of inputs given as initializers
  int outputs = 1;

  bool is_constant(size_t i) const {
    return std::find(constant.begin(), constant.end(), static_cast<int>(i)) != constant.end();
  }

  Graph graph() const {
    Graph g;
    g.opset = opset;
    Node n{"n", op, {}, {}, attrs};
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::string name = inputs[i].defined() ? "x" + std::to_string(i) : "";
      n.inputs.push_back(name);
      if (name.empty()) continue;
      if (is_constant(i)) {
        g.initializers[name] = inputs[i];
        continue;
      }
      std::vector<Dim> dims;
      for (int64_t d : inputs[i].shape()) dims.push_back(Dim{d, ""});
      g.inputs.push_back(ValueDecl{name, inputs[i].dtype(), dims});
    }
    // The declared dtype is not checked: the session infers the real one.
    for (int k = 0; k < outputs; ++k) {
      n.outputs.push_back("y" + std::to_string(k));
      g.outputs.push_back(ValueDecl{n.outputs.back(), DType::kF32, std::nullopt});
    }
    g.nodes.push_back(n);
    return g;
  }

  // The inputs that graph() leaves to be fed at run time, by name.
  TensorMap feed() const {
    TensorMap fed;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].defined() && !is_constant(i)) fed["x" + std::to_string(i)] = inputs[i];
    return fed;
  }

  std::vector<Tensor> run() const {
    TensorMap out = Session(graph()).run(feed());
    std::vector<Tensor> result;
    for (int k = 0; k < outputs; ++k) result.push_back(out.at("y" + std::to_string(k)));
    return result;
  }
  Tensor run1() const { return run().at(0); }
};

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr
};

// Runs `shell_command` with stderr joined to stdout.
inline CommandResult run_command(const std::string& shell_command) {
  std::string cmd = shell_command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

// The graft command line with `args`, run as a user would (GRAFT_BINARY comes
// from tests/CMakeLists.txt).
inline CommandResult graft_cli(const std::string& args) {
  return run_command(std::string(GRAFT_BINARY) + " " + args);
}

}  // namespace graft::test
