// The dense training step of hourglass.nn.fused, compiled.
//
// The same ATen operations, in the same order and with the same arguments, as
// hourglass.nn.fused.loss_and_gradients: the results are the same bits. What it saves is
// the interpreter's and the Python bindings' time around some 40 small operations a step.
// Built on request by hourglass.nn.native; see that module.

#include <torch/extension.h>

#include <string>
#include <tuple>
#include <vector>

namespace {

constexpr double kLeakySlope = 0.01;  // torch.nn.LeakyReLU's default
constexpr int64_t kProductChunk = 64;

at::Tensor activate(const std::string& name, const at::Tensor& z) {
  if (name == "relu") return at::relu(z);
  if (name == "leaky_relu") return at::leaky_relu(z, kLeakySlope);
  if (name == "tanh") return at::tanh(z);
  if (name == "sigmoid") return at::sigmoid(z);
  TORCH_CHECK(false, "No fused implementation of activation '", name, "'.");
}

at::Tensor activation_backward_(const std::string& name, at::Tensor grad, const at::Tensor& output) {
  if (name == "relu") return at::threshold_backward(grad, output, 0.0);
  if (name == "leaky_relu") return at::leaky_relu_backward(grad, output, kLeakySlope, true);
  if (name == "tanh") return grad.mul_(at::rsub(output * output, 1.0));
  return grad.mul_(output * at::rsub(output, 1.0));  // sigmoid
}

at::Tensor sum_log_upper_half(const at::Tensor& values) {
  at::Tensor flat = values.reshape(-1);
  const int64_t whole = flat.numel() - flat.numel() % kProductChunk;
  at::Tensor total = flat.slice(0, 0, whole).view({-1, kProductChunk}).prod(1).log_().sum();
  if (whole == flat.numel()) return total;
  return total + flat.slice(0, whole).log().sum();
}

at::Tensor bce_sum(const at::Tensor& logits, const at::Tensor& probabilities, const at::Tensor& target) {
  at::Tensor upper_half = (probabilities - 0.5).abs_().add_(0.5);
  at::Tensor softplus_sum = at::relu(logits).sum() - sum_log_upper_half(upper_half);
  return softplus_sum - at::dot(logits.reshape(-1), target.reshape(-1));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> output_loss_and_gradient(
    const at::Tensor& logits, const at::Tensor& target, const std::string& output_activation,
    const std::string& loss) {
  const int64_t n = logits.numel();
  at::Tensor output = output_activation == "sigmoid" ? at::sigmoid(logits) : logits;
  at::Tensor diff = output - target;
  at::Tensor mae = diff.abs().sum() / n;
  at::Tensor value;
  at::Tensor grad;
  if (loss == "bce") {
    value = bce_sum(logits, output, target) / n;
    grad = diff;
  } else if (loss == "mse") {
    value = diff.square().sum() / n;
    grad = diff.mul_(2.0);
  } else if (loss == "mae") {
    value = mae.clone();
    grad = diff.sign_();
  } else {
    TORCH_CHECK(false, "Unknown loss '", loss, "'.");
  }
  if (loss != "bce" && output_activation == "sigmoid") {
    grad.mul_(output * at::rsub(output, 1.0));
  }
  grad.mul_(1.0 / static_cast<double>(n));
  return {value, mae, grad};
}

// weights[i], biases[i]: layer i (input side first); weight_grads[i], bias_grads[i]: where
// its gradients are written (overwritten in place).
std::vector<at::Tensor> loss_and_gradients(
    const at::Tensor& x, const at::Tensor& target, const std::vector<at::Tensor>& weights,
    const std::vector<at::Tensor>& biases, std::vector<at::Tensor> weight_grads,
    std::vector<at::Tensor> bias_grads, const std::string& activation,
    const std::string& output_activation, const std::string& loss) {
  const size_t layers = weights.size();
  TORCH_CHECK(layers > 0 && biases.size() == layers && weight_grads.size() == layers &&
                  bias_grads.size() == layers,
              "one weight, bias and gradient buffer per layer");
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> layer_inputs{x};
  for (size_t i = 0; i + 1 < layers; ++i) {
    at::Tensor pre_activation = at::addmm(biases[i], layer_inputs.back(), weights[i].t());
    layer_inputs.push_back(activate(activation, pre_activation));
  }
  at::Tensor logits = at::addmm(biases[layers - 1], layer_inputs.back(), weights[layers - 1].t());
  auto [value, mae, grad] = output_loss_and_gradient(logits, target, output_activation, loss);
  for (size_t k = layers; k-- > 0;) {
    at::mm_out(weight_grads[k], grad.t(), layer_inputs[k]);
    at::sum_out(bias_grads[k], grad, {0});
    if (k > 0) grad = activation_backward_(activation, grad.mm(weights[k]), layer_inputs[k]);
  }
  return {value, mae};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "hourglass's compiled dense training step (hourglass.nn.native)";
  m.def("loss_and_gradients", &loss_and_gradients,
        "Forward pass, mean loss and MAE, and every layer's gradients written in place.");
}
