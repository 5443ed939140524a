// Helpers shared by the tests: a tiny ONNX model built in code, and an
// assertion that a call throws a graft::Error of a given kind and text.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <functional>
#include <string>

#include "graft/error.h"

namespace graft::test {


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

}  // namespace graft::test
