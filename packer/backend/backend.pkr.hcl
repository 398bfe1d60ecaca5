# backend image: Consul agent + the backend app (service `backend`, port 8080).
#   packer init packer/backend && packer build -var project_id=PROJECT packer/backend
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

source "googlecompute" "backend" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image_family     = var.source_image_family
  source_image_project_id = ["debian-cloud"]
  image_name              = "ilb-backend-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  image_family            = "ilb-backend"
  image_labels            = { role = "backend" }
  machine_type            = "e2-small"
  disk_size               = 10
  ssh_username            = "packer"
  tags                    = ["packer"]
}

build {
  sources = ["source.googlecompute.backend"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/ilb/packer/consul /tmp/ilb/packer/backend"]
  }

  provisioner "file" {
    source      = "${path.root}/../consul/files"
    destination = "/tmp/ilb/packer/consul/"
  }

  provisioner "file" {
    source      = "${path.root}/files"
    destination = "/tmp/ilb/packer/backend/"
  }

  provisioner "file" {
    sources     = ["${var.app_dir}/dist", "${var.app_dir}/package.json", "${var.app_dir}/package-lock.json"]
    destination = "/tmp/ilb/app/"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline = [
      "set -euo pipefail",
      "bash /tmp/ilb/packer/consul/files/install-packages.sh ''",
      "bash /tmp/ilb/packer/consul/files/install-app.sh /tmp/ilb/app",
      "bash /tmp/ilb/packer/consul/files/install-role.sh backend /tmp/ilb/packer",
      "rm -rf /tmp/ilb",
    ]
  }
}
