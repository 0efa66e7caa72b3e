// Every sequential and session model on a CUDA GPU: SequentialModel<Family, cuda::Backend> for
// SASRec, BERT4Rec, their profile-distilling families, STAMP, FPMC and Atten-Mixer (training with the generic trainer, full-ranking evaluation, weights,
// recommend) for configs with runtime.backend: cuda. Built only where nvcc is found, in a
// library of its own, so the CPU plugins load on machines without CUDA. It offers each model
// beside its CPU plugin: each declines the other's backend, so the config's
// runtime.backend picks the plugin.
#include "recdistill/backend/cuda/backend.cuh"
#ifdef RECDISTILL_WITH_NCCL
#include "recdistill/backend/cuda/nccl.cuh"  // data-parallel gradients on the device (before the models)
#endif
#include "../common/sequential_model.hpp"

#include <cstdlib>

#ifndef RECDISTILL_VERSION
#define RECDISTILL_VERSION "unknown"
#endif

namespace {

using namespace recdistill;

plugin::PluginInfo describe() {
  plugin::PluginInfo info;
  info.name = "sequential_cuda";
  info.version = RECDISTILL_VERSION;
  info.models.push_back({"SASRec",
                         "self-attentive sequential recommender on a CUDA GPU (runtime.backend: cuda, "
                         "runtime.device), variants recbole and pmixer, next-item CE or sampled BPR",
                         io::describe<io::ExperimentConfig>()});
  info.models.push_back({"BERT4Rec",
                         "bidirectional transformer with a cloze objective on a CUDA GPU (runtime.backend: cuda, "
                         "runtime.device), variants recbole and hf",
                         io::describe<io::BERT4RecExperimentConfig>()});
  info.models.push_back({"SASRecLLM", "SASRec with LLM profile distillation on a CUDA GPU (runtime.backend: cuda)",
                         io::describe<io::ExperimentConfig>()});
  info.models.push_back({"BERT4RecLLM", "BERT4Rec with LLM profile distillation on a CUDA GPU (runtime.backend: cuda)",
                         io::describe<io::BERT4RecExperimentConfig>()});
  info.models.push_back({"STAMP", "STAMP on a CUDA GPU (runtime.backend: cuda), variants recbole and alkdrec_simplified",
                         io::describe<io::STAMPExperimentConfig>()});
  info.models.push_back({"FPMC", "FPMC on a CUDA GPU (runtime.backend: cuda), variants recbole and session",
                         io::describe<io::FPMCExperimentConfig>()});
  info.models.push_back({"AttenMixer", "Atten-Mixer on a CUDA GPU (runtime.backend: cuda), variants official and alkdrec",
                         io::describe<io::AttenMixerExperimentConfig>()});
  return info;
}

// Under mpirun, one rank per GPU: the rank with local rank l (its index on its machine, from
// OpenMPI's mpirun, or Slurm's srun) uses device runtime.device + l; where each rank sees a
// single GPU (a launcher that sets CUDA_VISIBLE_DEVICES per rank), that one.
int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

// Selects runtime.device (for this rank), or fails naming what is missing (driver, device, index).
void select_device(int first) {
  const int local = local_rank();
  int device = first + local;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    fail("runtime.backend: cuda: no usable CUDA driver or device (cudaGetDeviceCount: ", cudaGetErrorName(e), ": ",
         cudaGetErrorString(e), "); train with runtime.backend: cpu on this machine");
  }
  if (count == 0) fail("runtime.backend: cuda: the CUDA driver reports no device; train with runtime.backend: cpu");
  if (count == 1 && first == 0) device = 0;  // one visible GPU per rank
  if (device >= count && local == 0)
    fail("runtime.device: ", device, ", but this machine has ", count, " CUDA device(s) (0..", count - 1, ")");
  if (device >= count)
    fail("runtime.device ", first, " + local rank ", local, " (one GPU per rank under mpirun) = device ", device,
         ", but this machine has ", count, " CUDA device(s): launch at most ", count - first, " rank(s) per machine");
  RD_CUDA_CHECK(cudaSetDevice(device));
}

template <class Config>
Config cuda_config(const io::ConfigLayers& layers) {
  auto cfg = io::parse_config<Config>(layers, {}, io::checked_by_the_app());
  if (cfg.runtime.backend != "cuda")
    plugin::decline(cat("runs on runtime.backend cuda only; the config asks for '", cfg.runtime.backend, "'"));
  select_device(cfg.runtime.device);
  cuda::set_tf32(cfg.runtime.tf32);
  return cfg;
}

std::unique_ptr<plugin::Model> create_model(const std::string& name, const io::ConfigLayers& layers) {
  if (name == "SASRec")
    return std::make_unique<plugins::SequentialModel<SASRecFamily, cuda::Backend>>(
        cuda_config<io::ExperimentConfig>(layers));
  if (name == "BERT4Rec")
    return std::make_unique<plugins::SequentialModel<BERT4RecFamily, cuda::Backend>>(
        cuda_config<io::BERT4RecExperimentConfig>(layers));
  if (name == "SASRecLLM")
    return std::make_unique<plugins::SequentialModel<SASRecLLMFamily, cuda::Backend>>(
        cuda_config<io::ExperimentConfig>(layers));
  if (name == "BERT4RecLLM")
    return std::make_unique<plugins::SequentialModel<BERT4RecLLMFamily, cuda::Backend>>(
        cuda_config<io::BERT4RecExperimentConfig>(layers));
  if (name == "STAMP")
    return std::make_unique<plugins::SequentialModel<STAMPFamily, cuda::Backend>>(
        cuda_config<io::STAMPExperimentConfig>(layers));
  if (name == "FPMC")
    return std::make_unique<plugins::SequentialModel<FPMCFamily, cuda::Backend>>(
        cuda_config<io::FPMCExperimentConfig>(layers));
  if (name == "AttenMixer")
    return std::make_unique<plugins::SequentialModel<AttenMixerFamily, cuda::Backend>>(
        cuda_config<io::AttenMixerExperimentConfig>(layers));
  return nullptr;
}

}  // namespace

RECDISTILL_PLUGIN(describe, create_model, recdistill::plugin::no_strategies)
