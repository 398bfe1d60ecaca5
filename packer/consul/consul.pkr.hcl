# Consul server image: the agent in server mode; bootstrap_expect and retry_join from metadata.
#   packer init packer/consul && packer build -var project_id=PROJECT packer/consul
# Nothing secret is baked: gossip key, ACL token and CA come from instance metadata or Secret Manager at boot.

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

source "googlecompute" "consul" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image_family     = var.source_image_family
  source_image_project_id = ["debian-cloud"]
  image_name              = "ilb-consul-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  image_family            = "ilb-consul"
  image_labels            = { role = "consul" }
  machine_type            = "e2-small"
  disk_size               = 10
  ssh_username            = "packer"
  tags                    = ["packer"]
}

build {
  sources = ["source.googlecompute.consul"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/ilb/packer/consul /tmp/ilb/packer/consul"]
  }

  provisioner "file" {
    source      = "${path.root}/../consul/files"
    destination = "/tmp/ilb/packer/consul/"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline = [
      "set -euo pipefail",
      "bash /tmp/ilb/packer/consul/files/install-packages.sh ''",
      "bash /tmp/ilb/packer/consul/files/install-role.sh consul /tmp/ilb/packer",
      "rm -rf /tmp/ilb",
    ]
  }
}
