# The image of one role, chosen by `role`; the role's own files are packer/<role>/files.
#   consul    Consul server (bootstrap_expect and retry_join from metadata)
#   backend   Consul agent + the backend app (service `backend`, port 8080)
#   haproxy   Consul agent, consul-template, HAProxy and haproxy-sync (service `haproxy-internal`, port 8080)
#   frontend  Consul agent, dnsmasq for .consul, the frontend app (service `frontend`, port 80)
#     packer init packer && packer build -var role=backend -var project_id=PROJECT -var app_dir=. packer
# Nothing secret is baked: gossip key, ACL token and CA come from instance metadata or Secret Manager at boot.

variable "role" {
  type = string
  validation {
    condition     = contains(["consul", "backend", "haproxy", "frontend"], var.role)
    error_message = "The role must be one of consul, backend, haproxy, frontend."
  }
}

variable "project_id" {
  type = string
}

variable "zone" {
  type    = string
  default = "us-central1-a"
}

variable "source_image_family" {
  type    = string
  default = "debian-12"
}

# Holds dist/ (npm run build), package.json and package-lock.json; read for the roles with the app.
variable "app_dir" {
  type    = string
  default = "."
}

locals {
  # What differs between the roles besides their files: extra Debian packages, and the Node.js app.
  roles = {
    consul   = { packages = "", app = false }
    backend  = { packages = "", app = true }
    haproxy  = { packages = "haproxy", app = true }
    frontend = { packages = "dnsmasq", app = true }
  }
  app = local.roles[var.role].app

  # Uploaded into /tmp/ilb/: the packer/ folders install-role.sh reads (consul/files holds what every
  # image needs) and the app files install-app.sh reads.
  uploads = concat(
    distinct(["${path.root}/consul", "${path.root}/${var.role}"]),
    local.app ? ["${var.app_dir}/dist", "${var.app_dir}/package.json", "${var.app_dir}/package-lock.json"] : [],
  )
  install = compact([
    "set -euo pipefail",
    "bash /tmp/ilb/consul/files/install-packages.sh '${local.roles[var.role].packages}'",
    local.app ? "bash /tmp/ilb/consul/files/install-app.sh /tmp/ilb" : "",
    "bash /tmp/ilb/consul/files/install-role.sh ${var.role} /tmp/ilb",
    "rm -rf /tmp/ilb",
  ])
}

source "googlecompute" "ilb" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image_family     = var.source_image_family
  source_image_project_id = ["debian-cloud"]
  image_name              = "ilb-${var.role}-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  image_family            = "ilb-${var.role}"
  image_labels            = { role = var.role }
  machine_type            = "e2-small"
  disk_size               = 10
  ssh_username            = "packer"
  tags                    = ["packer"]
}

build {
  sources = ["source.googlecompute.ilb"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/ilb"]
  }

  provisioner "file" {
    sources     = local.uploads
    destination = "/tmp/ilb/"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline          = local.install
  }
}
