# haproxy image: Consul agent, consul-template, HAProxy and haproxy-sync (service `haproxy-internal`, port 8080).
#   packer init packer/haproxy && packer build -var project_id=PROJECT packer/haproxy
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

source "googlecompute" "haproxy" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image_family     = var.source_image_family
  source_image_project_id = ["debian-cloud"]
  image_name              = "ilb-haproxy-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  image_family            = "ilb-haproxy"
  image_labels            = { role = "haproxy" }
  machine_type            = "e2-small"
  disk_size               = 10
  ssh_username            = "packer"
  tags                    = ["packer"]
}

build {
  sources = ["source.googlecompute.haproxy"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/ilb/packer/consul /tmp/ilb/packer/haproxy"]
  }

  provisioner "file" {
    source      = "${path.root}/../consul/files"
    destination = "/tmp/ilb/packer/consul/"
  }

  provisioner "file" {
    source      = "${path.root}/files"
    destination = "/tmp/ilb/packer/haproxy/"
  }

  provisioner "file" {
    sources     = ["${var.app_dir}/dist", "${var.app_dir}/package.json", "${var.app_dir}/package-lock.json"]
    destination = "/tmp/ilb/app/"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline = [
      "set -euo pipefail",
      "bash /tmp/ilb/packer/consul/files/install-packages.sh 'haproxy'",
      "bash /tmp/ilb/packer/consul/files/install-app.sh /tmp/ilb/app",
      "bash /tmp/ilb/packer/consul/files/install-role.sh haproxy /tmp/ilb/packer",
      "rm -rf /tmp/ilb",
    ]
  }
}
