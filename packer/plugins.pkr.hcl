# Modern Packer: `packer init packer` installs this plugin. CI validates image.pkr.hcl alone with
# Debian's Packer 1.6.6, which bundles the googlecompute builder and predates required_plugins.
packer {
  required_plugins {
    googlecompute = {
      version = ">= 1.1.6"
      source  = "github.com/hashicorp/googlecompute"
    }
  }
}
