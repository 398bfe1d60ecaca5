# frontend image: Consul agent, dnsmasq for .consul, the frontend app (service `frontend`, port 80).
#   packer init packer/frontend && packer build -var project_id=PROJECT packer/frontend
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

# Holds dist/ (npm run build), package.json and package-lock.json.
variable "app_dir" {
  type    = string
  default = "."
}

source "googlecompute" "frontend" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image_family     = var.source_image_family
  source_image_project_id = ["debian-cloud"]
  image_name              = "ilb-frontend-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  image_family            = "ilb-frontend"
  image_labels            = { role = "frontend" }
  machine_type            = "e2-small"
  disk_size               = 10
  ssh_username            = "packer"
  tags                    = ["packer"]
}

build {
  sources = ["source.googlecompute.frontend"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/ilb/packer/consul /tmp/ilb/packer/frontend"]
  }

  provisioner "file" {
    source      = "${path.root}/../consul/files"
    destination = "/tmp/ilb/packer/consul/"
  }

  provisioner "file" {
    source      = "${path.root}/files"
    destination = "/tmp/ilb/packer/frontend/"
  }

  provisioner "file" {
    sources     = ["${var.app_dir}/dist", "${var.app_dir}/package.json", "${var.app_dir}/package-lock.json"]
    destination = "/tmp/ilb/app/"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline = [
      "set -euo pipefail",
      "bash /tmp/ilb/packer/consul/files/install-packages.sh 'dnsmasq'",
      "bash /tmp/ilb/packer/consul/files/install-app.sh /tmp/ilb/app",
      "bash /tmp/ilb/packer/consul/files/install-role.sh frontend /tmp/ilb/packer",
      "rm -rf /tmp/ilb",
    ]
  }
}
