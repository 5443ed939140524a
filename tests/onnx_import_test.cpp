// ONNX import: the forms weights come in, symbolic dimensions, external data,
// and every kind of malformed file giving a clear error.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "graft/onnx.h"
#include "graft/session.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;
namespace fs = std::filesystem;

namespace {

Graph parse(const onnx::ModelProto& m, const std::string& dir = ".") {
  return parse_onnx(m.SerializeAsString(), dir, "test.onnx");
}

std::vector<float> run_add(const Graph& g, int64_t batch) {
  std::vector<float> xs(batch * 3, 10.f);
  TensorMap out = Session(g).run({{"x", Tensor::from_vector<float>({batch, 3}, xs)}});
  return out.at("y").to_vector<float>();
}

}  // namespace

TEST(OnnxImport, SymbolicBatchRunsAtAnySize) {
  Graph g = parse(add_model());
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ((*g.inputs[0].shape)[0].symbol, "batch");
  EXPECT_EQ(run_add(g, 1), (std::vector<float>{11, 12, 13}));
  EXPECT_EQ(run_add(g, 3).size(), 9u);
}

TEST(OnnxImport, WeightsAsConstantNode) {
  onnx::ModelProto m = add_model();
  auto* g = m.mutable_graph();
  onnx::TensorProto w = g->initializer(0);
  g->clear_initializer();
  auto* c = g->add_node();
  c->set_op_type("Constant");
  c->add_output("w");
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = w;
  // The Constant comes after its consumer in the file: import sorts nodes.
  Graph graph = parse(m);
  EXPECT_TRUE(graph.is_initializer("w"));
  EXPECT_EQ(run_add(graph, 1), (std::vector<float>{11, 12, 13}));
}

TEST(OnnxImport, Ir3WeightsListedAsInputs) {
  onnx::ModelProto m = add_model(6, 3);
  auto* w_in = m.mutable_graph()->add_input();
  w_in->set_name("w");
  w_in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  Graph g = parse(m);
  EXPECT_EQ(g.inputs.size(), 1u);  // w is a weight, not a runtime input
  EXPECT_EQ(run_add(g, 1), (std::vector<float>{11, 12, 13}));
}

TEST(OnnxImport, ExternalDataNextToTheModel) {
  fs::path dir = test::temp_path("graft_external_test");
  fs::create_directories(dir);
  std::vector<float> w = {4, 5, 6};
  {
    std::ofstream f(dir / "weights.bin", std::ios::binary);
    f.write("PADDING!", 8);
    f.write(reinterpret_cast<const char*>(w.data()), 12);
  }
  onnx::ModelProto m = add_model();
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_float_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto set = [&](const char* k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  set("location", "weights.bin");
  set("offset", "8");
  set("length", "12");
  EXPECT_EQ(run_add(parse(m, dir.string()), 1), (std::vector<float>{14, 15, 16}));

  t->mutable_external_data(1)->set_value("16");  // offset + length past the end
  expect_error([&] { parse(m, dir.string()); }, ErrorKind::kCorruption, "too short");
  t->mutable_external_data(0)->set_value("missing.bin");
  expect_error([&] { parse(m, dir.string()); }, ErrorKind::kNotFound, "missing.bin");
  t->mutable_external_data(0)->set_value("../etc/passwd");
  expect_error([&] { parse(m, dir.string()); }, ErrorKind::kCorruption, "inside the model's folder");
  fs::remove_all(dir);
}

TEST(OnnxImportErrors, TruncatedFile) {
  std::string bytes = add_model().SerializeAsString();
  expect_error([&] { parse_onnx(bytes.substr(0, bytes.size() / 2), ".", "cut.onnx"); },
               ErrorKind::kCorruption, "cut.onnx: not a valid ONNX model");
}

TEST(OnnxImportErrors, NotAModel) {
  expect_error([] { parse_onnx(std::string(100, '\xff'), ".", "junk.onnx"); },
               ErrorKind::kCorruption, "junk.onnx");
}

TEST(OnnxImportErrors, MissingFileNamesIt) {
  expect_error([] { load_onnx("/nonexistent/model.onnx"); }, ErrorKind::kNotFound,
               "/nonexistent/model.onnx");
}

TEST(OnnxImportErrors, UnsupportedOpsetAndIrVersion) {
  expect_error([] { parse(add_model(18)); }, ErrorKind::kUnsupported, "opset 18");
  expect_error([] { parse(add_model(13, 9)); }, ErrorKind::kUnsupported, "IR version 9");
  expect_error([] { parse(add_model(13, 2)); }, ErrorKind::kUnsupported, "IR version 2");
}

TEST(OnnxImportErrors, UnknownOpNamesNodeAndOp) {
  onnx::ModelProto m = add_model();
  m.mutable_graph()->mutable_node(0)->set_op_type("FancyOp");
  expect_error([&] { parse(m); }, ErrorKind::kUnsupported,
               "node 'plus' (FancyOp): op 'FancyOp' is not supported");
}

TEST(OnnxImportErrors, UnknownAttributeNamesIt) {
  onnx::ModelProto m = add_model();
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("shiny");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(1);
  expect_error([&] { parse(m); }, ErrorKind::kUnsupported, "attribute 'shiny' is not supported");
}

TEST(OnnxImportErrors, OtherDomainsAreUnsupported) {
  onnx::ModelProto m = add_model();
  m.mutable_graph()->mutable_node(0)->set_domain("com.microsoft");
  expect_error([&] { parse(m); }, ErrorKind::kUnsupported, "domain 'com.microsoft'");
}

TEST(OnnxImportErrors, OverflowingDimsDoNotAllocate) {
  onnx::ModelProto m = add_model();
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_dims();
  t->add_dims(int64_t{1} << 40);
  t->add_dims(int64_t{1} << 40);
  expect_error([&] { parse(m); }, ErrorKind::kInvalidArgument, "more elements than fit");
}

TEST(OnnxImportErrors, DimsBeyondTheDataPresent) {
  onnx::ModelProto m = add_model();
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_dims();
  t->add_dims(int64_t{1} << 31);  // 8 GiB of floats declared, 3 present
  expect_error([&] { parse(m); }, ErrorKind::kCorruption, "tensor 'w': holds 3 values");
  t->clear_float_data();
  t->set_raw_data(std::string(12, '\0'));
  expect_error([&] { parse(m); }, ErrorKind::kCorruption, "raw data is 12 bytes");
}

TEST(OnnxImportErrors, CycleNamesANode) {
  onnx::ModelProto m = add_model();
  auto* g = m.mutable_graph();
  g->mutable_node(0)->set_input(1, "z");
  auto* n = g->add_node();
  n->set_name("loop");
  n->set_op_type("Add");
  n->add_input("y");
  n->add_input("x");
  n->add_output("z");
  expect_error([&] { parse(m); }, ErrorKind::kCorruption, "cycle");
}

TEST(OnnxImportErrors, UndefinedInputNamesNodeAndValue) {
  onnx::ModelProto m = add_model();
  m.mutable_graph()->mutable_node(0)->set_input(1, "ghost");
  expect_error([&] { parse(m); }, ErrorKind::kCorruption, "node 'plus' (Add): input 'ghost'");
}

TEST(OnnxImportErrors, UnsupportedElementType) {
  onnx::ModelProto m = add_model();
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::STRING);
  expect_error([&] { parse(m); }, ErrorKind::kUnsupported, "STRING");
}

TEST(SessionErrors, WrongInputShapeOrType) {
  Graph g = parse(add_model());
  Session s(g);
  expect_error([&] { s.run({{"x", Tensor(DType::kF32, {2, 4})}}); }, ErrorKind::kInvalidArgument,
               "input 'x' has shape 2x4, the model declares batchx3");
  expect_error([&] { s.run({{"x", Tensor(DType::kI64, {2, 3})}}); }, ErrorKind::kInvalidArgument,
               "should be float32, got int64");
  expect_error([&] { s.run({}); }, ErrorKind::kInvalidArgument, "input 'x' was not given");
  expect_error([&] { s.run({{"x", Tensor(DType::kF32, {2, 3})}, {"q", Tensor(DType::kF32, {1})}}); },
               ErrorKind::kInvalidArgument, "no input named 'q'");
}

TEST(SessionErrors, IncompatibleBroadcastNamesNode) {
  onnx::ModelProto m = add_model();
  auto* x = m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type();
  x->mutable_shape()->mutable_dim(1)->clear_dim_value();
  x->mutable_shape()->mutable_dim(1)->set_dim_param("n");
  Session s(parse(m));
  expect_error([&] { s.run({{"x", Tensor(DType::kF32, {1, 4})}}); }, ErrorKind::kInvalidArgument,
               "node 'plus' (Add): shapes 1x4 and 3 cannot be broadcast");
}
