"""
PyTorch/PEFT reference numbers for the trl backend's tests, read from a JSON request on argv[1]:
- {"mode": "logits", "model", "adapter", "ids"}: PEFT logits of one row, flattened.
- {"mode": "sft", "model", "adapter", "ids": [[...]], "mask": [[...]]}: the SFT loss (mean cross
  entropy over masked target tokens, as TRL's SFTTrainer) and every LoRA gradient by PEFT name.
- {"mode": "dpo", "model", "adapter", "beta", "nll", "pairs": [{"chosen", "chosenMask", "rejected", "rejectedMask"}]}:
  TRL's loss_type [sigmoid, sft] with weights [1, nll]: mean over pairs of -log sigmoid(beta x the
  log-ratio margin, reference = the adapter disabled) plus nll x the chosen replies' mean token NLL.
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

req = json.loads(sys.argv[1])
torch.manual_seed(0)
base = AutoModelForCausalLM.from_pretrained(req["model"], dtype=torch.float32)
model = PeftModel.from_pretrained(base, req["adapter"], is_trainable=req["mode"] == "sft")
model.eval()
if req["mode"] == "logits":
    with torch.no_grad():
        out = model(torch.tensor([req["ids"]])).logits[0]
    print(json.dumps({"logits": out.flatten().tolist()}))
elif req["mode"] == "dpo":

    def logp(ids, mask):
        ids = torch.tensor([ids])
        logits = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        token = logits.gather(-1, ids[0, 1:, None])[:, 0]
        m = torch.tensor(mask[1:], dtype=torch.float32)
        return (token * m).sum(), m.sum()

    with torch.no_grad():
        policy = [(logp(p["chosen"], p["chosenMask"]), logp(p["rejected"], p["rejectedMask"])) for p in req["pairs"]]
        with model.disable_adapter():
            ref = [(logp(p["chosen"], p["chosenMask"])[0], logp(p["rejected"], p["rejectedMask"])[0]) for p in req["pairs"]]
    beta = req["beta"]
    sigmoid = torch.stack([-torch.nn.functional.logsigmoid(beta * ((c[0] - rc) - (r[0] - rr))) for (c, r), (rc, rr) in zip(policy, ref)]).mean()
    sft = -sum(c[0] for c, _ in policy) / sum(c[1] for c, _ in policy)
    print(json.dumps({"loss": (sigmoid + req["nll"] * sft).item()}))
else:
    ids = torch.tensor(req["ids"])
    labels = ids.clone()
    labels[torch.tensor(req["mask"]) == 0] = -100
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    grads = {n: p.grad.flatten().tolist() for n, p in model.named_parameters() if p.requires_grad}
    print(json.dumps({"loss": loss.item(), "grads": grads}))
