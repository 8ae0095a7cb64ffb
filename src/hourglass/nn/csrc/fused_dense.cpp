// The dense training step of hourglass.nn.fused, compiled, and a loop of such steps.
//
// loss_and_gradients makes the same ATen operations, in the same order and with the same
// arguments, as hourglass.nn.fused.loss_and_gradients: the results are the same bits.
// train_batches runs several batches of the training loop (hourglass.training) in one call:
// each batch gathered and scaled as the loop's batch source and hourglass.estimators'
// to_unit_float do, corrupted as hourglass.nn.noise.corrupt does for a denoising model,
// the step above, and the update of hourglass.training.FusedAdamW with
// subnormals flushed as in hourglass._subnormals; again the same operations, so the same
// bits. What they save is the interpreter's and the Python bindings' time around some 40
// small operations a step, and the loop's around them. A change to any of those Python
// functions must be made here too; tests/nn/test_native.py compares the two bit for bit.
// Built on request by hourglass.nn.native; see that module.

#include <torch/extension.h>

#include <algorithm>
#include <optional>
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

// One update of hourglass.training.FusedAdamW.step: the step counts, then the fused kernel.
void adamw_update(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                  std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs,
                  std::vector<at::Tensor>& steps, double lr, double beta1, double beta2,
                  double weight_decay, double eps) {
  at::_foreach_add_(steps, 1);
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, lr, beta1, beta2,
                    weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false,
                    /*grad_scale=*/std::nullopt, /*found_inf=*/std::nullopt);
}

// hourglass.nn.noise.corrupt with its range given: the same draws from `generator`, made
// and applied with the same operations.
at::Tensor corrupt(const at::Tensor& x, const std::string& kind, double strength,
                   const std::optional<at::Generator>& generator, double low, double high) {
  at::Tensor noisy;
  if (kind == "gaussian") {
    noisy = x + at::randn(x.sizes(), generator, x.options()) * strength;
  } else if (kind == "salt_pepper") {
    at::Tensor draws = at::rand(x.sizes(), generator, x.options());
    noisy = x.clone();
    noisy.masked_fill_(draws < strength / 2, low);  // pepper
    noisy.masked_fill_((draws >= strength / 2).logical_and_(draws < strength), high);  // salt
  } else if (kind == "mask") {
    noisy = x * (at::rand(x.sizes(), generator, x.options()) >= strength);
  } else {
    TORCH_CHECK(false, "Unknown noise '", kind, "'.");
  }
  return noisy.clamp(low, high);
}

// Trains on batches first, ..., first + count - 1 of an epoch: batch b holds rows
// [b * batch_size, (b + 1) * batch_size) of `order` (a permutation of the rows), or of the
// inputs as they are without one. uint8 inputs are divided by `scale` as float32; float32
// inputs are used as they are. Each batch is its own reconstruction target; with a `noise`
// kind (not "") the model sees it corrupted (see corrupt above). The parameters
// (`params`, whose gradients are `grads`: the layers' weight_grads and bias_grads), their
// moments and step counts are updated in place; with flush_subnormals the update runs with
// subnormal floats flushed to zero (where the CPU can). Returns each batch's loss and MAE.
std::vector<at::Tensor> train_batches(
    const at::Tensor& inputs, const std::optional<at::Tensor>& order, int64_t batch_size,
    int64_t first, int64_t count, double scale, const std::vector<at::Tensor>& weights,
    const std::vector<at::Tensor>& biases, const std::vector<at::Tensor>& weight_grads,
    const std::vector<at::Tensor>& bias_grads, std::vector<at::Tensor> params,
    std::vector<at::Tensor> grads, std::vector<at::Tensor> exp_avgs,
    std::vector<at::Tensor> exp_avg_sqs, std::vector<at::Tensor> steps, double lr, double beta1,
    double beta2, double weight_decay, double eps, bool flush_subnormals,
    const std::string& noise, double noise_strength,
    const std::optional<at::Generator>& noise_generator, double noise_low, double noise_high,
    const std::string& activation, const std::string& output_activation,
    const std::string& loss) {
  TORCH_CHECK(inputs.scalar_type() == at::kByte || inputs.scalar_type() == at::kFloat,
              "train_batches takes uint8 or float32 inputs");
  TORCH_CHECK(batch_size > 0 && first >= 0 && count >= 0, "batch_size > 0, first, count >= 0");
  TORCH_CHECK(params.size() == grads.size() && params.size() == exp_avgs.size() &&
                  params.size() == exp_avg_sqs.size() && params.size() == steps.size(),
              "one gradient, two moments and a step count per parameter");
  const int64_t rows = order.has_value() ? order->numel() : inputs.size(0);
  TORCH_CHECK((first + count - 1) * batch_size < rows || count == 0, "batches past the data");
  // Inference mode skips autograd's bookkeeping in every operation (about 6% of an epoch).
  c10::InferenceMode inference_mode;
  std::vector<at::Tensor> losses;
  std::vector<at::Tensor> maes;
  for (int64_t b = 0; b < count; ++b) {
    const int64_t start = (first + b) * batch_size;
    const int64_t stop = std::min(start + batch_size, rows);
    at::Tensor batch = order.has_value() ? inputs.index_select(0, order->slice(0, start, stop))
                                         : inputs.slice(0, start, stop);
    if (batch.scalar_type() == at::kByte) batch = batch.to(at::kFloat).div_(scale);
    at::Tensor target = batch.reshape({batch.size(0), -1});
    at::Tensor x = noise.empty() ? target
                                 : corrupt(batch, noise, noise_strength, noise_generator,
                                           noise_low, noise_high)
                                       .reshape({batch.size(0), -1});
    std::vector<at::Tensor> values = loss_and_gradients(
        x, target, weights, biases, weight_grads, bias_grads, activation, output_activation, loss);
    losses.push_back(values[0]);
    maes.push_back(values[1]);
    const bool flushed = flush_subnormals && at::globalContext().setFlushDenormal(true);
    adamw_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps);
    if (flushed) at::globalContext().setFlushDenormal(false);
  }
  if (count == 0) return {at::empty({0}, at::kFloat), at::empty({0}, at::kFloat)};
  return {at::stack(losses), at::stack(maes)};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "hourglass's compiled dense training step (hourglass.nn.native)";
  m.def("loss_and_gradients", &loss_and_gradients,
        "Forward pass, mean loss and MAE, and every layer's gradients written in place.");
  m.def("train_batches", &train_batches,
        "Several training steps with their AdamW updates; each batch's loss and MAE.");
}
