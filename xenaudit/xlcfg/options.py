"""Which keys xl understands, and which ones are left over from xm/xend.

Sources, read for this list:

* docs/man/xl.cfg.5.pod.in: every top-level ``=item B<key=...>`` (as shipped
  with Xen 4.17, plus the keys later releases added: sve, virtio, nr_spis,
  trap_unmapped_accesses, llc_colors, bootloader_restrict, bootloader_user).
  Items nested inside a spec string (``pnode=``, ``backend=``, ...) are not
  keys of their own.
* tools/xl/xl_parse.c ``parse_config_data``: keys xl reads although the
  manual does not list them (``period``, ``slice``, ``latency``,
  ``extratime``, ``display``, ``xauthority``, ``firmware_override``, and the
  ones it only reads to warn about: ``device_model``, ``vncviewer``,
  ``vif2``).
* tools/python/xen/xm/create.py (xm, removed in Xen 4.5): options that xm
  accepted and xl never reads.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: `cfg show` starts faster
if TYPE_CHECKING:
    from typing import Final


def _words(text: str) -> frozenset[str]:
    """Key lists are kept as plain text so they read like the manual's index."""
    return frozenset(text.split())


# Top-level items of xl.cfg(5) (Xen 4.17).
DOCUMENTED: Final = _words(
    """
    acpi acpi_firmware acpi_laptop_slate acpi_s3 acpi_s4 altp2m altp2mhvm apic bios
    bios_path_override boot bootloader bootloader_args builder cap channel cmdline
    cpu_weight cpuid cpus cpus_soft device_model_args device_model_args_hvm
    device_model_args_pv device_model_override device_model_stubdomain_override
    device_model_stubdomain_seclabel device_model_user device_model_version device_tree
    disk dm_restrict driver_domain dtdev e820_host extra firmware gfx_passthru
    gic_version hap hdtype hpet init_seclabel iomem ioports irqs kernel keymap
    localtime max_event_channels max_grant_frames max_grant_version max_maptrack_frames
    maxmem maxvcpus mca_caps memory mmio_hole ms_vm_genid msr_relaxed name nestedhvm
    nographic nomigrate nx on_crash on_poweroff on_reboot on_soft_reset on_watchdog oos
    opengl p9 pae passthrough pci pci_msitranslate pci_permissive pci_power_mgmt
    pci_seize pool pvcalls pvshim pvshim_cmdline pvshim_extra pvshim_path ramdisk rdm
    rdm_mem_boundary root rtc_timeoffset sdl seclabel serial shadow_memory
    smbios_firmware soundhw spice spice_clipboard_sharing spice_image_compression
    spice_streaming_video spiceagent_mouse spicedisable_ticketing spicehost spicepasswd
    spiceport spicetls_port spiceusbredirection spicevdagent stdvga stubdomain_cmdline
    stubdomain_kernel stubdomain_memory stubdomain_ramdisk tee timer_mode tsc_mode type
    usb usbctrl usbdev usbdevice usbversion uuid vcpus vdispl vendor_device vfb vga
    videoram vif viridian vkb vkb_device vmtrace_buf_kb vnc vncdisplay vnclisten
    vncpasswd vncunused vnuma vpmu vpt_align vsnd vtpm vuart xen_platform_pci
    xend_suspend_evtchn_compat
    """
)

# Documented by releases after 4.17.
DOCUMENTED_LATER: Final = _words(
    """
    bootloader_restrict bootloader_user llc_colors nr_spis sve trap_unmapped_accesses
    virtio
    """
)

# Read by xl_parse.c without an entry of their own in xl.cfg(5).
READ_BY_XL: Final = _words(
    """
    period slice latency extratime display xauthority firmware_override
    device_model vncviewer vif2
    """
)

KNOWN_KEYS: Final = DOCUMENTED | DOCUMENTED_LATER | READ_BY_XL

# Keys xl_parse.c reads with xlu_cfg_get_long (or xlu_cfg_get_defbool, which
# reads a number too): strtol on the stored text, so ``memory = "1024"`` is
# the number 1024 to xl however it was quoted.
READ_AS_NUMBER: Final = _words(
    """
    memory maxmem vcpus maxvcpus shadow_memory videoram cpu_weight cap
    period slice latency extratime weight localtime rtc_timeoffset
    max_grant_frames max_maptrack_frames max_grant_version max_event_channels
    vnc vncunused sdl opengl nographic stdvga acpi apic pae hpet nx
    viridian_enable nestedhvm hap oos e820_host claim_mode driver_domain
    pvshim usb usbversion vpmu altp2mhvm vkb_device xen_platform_pci
    pci_msitranslate pci_power_mgmt pci_seize pci_permissive vga_videoram
    acpi_s3 acpi_s4 acpi_laptop_slate gfx_passthru
    """
)

# xl reads these only to print "WARNING: ignoring ..." (xl_parse.c).
IGNORED_WITH_WARNING: Final[dict[str, str]] = {
    "device_model": 'xl ignores "device_model" (an xm option); use device_model_override'
    " only if a non-default device model is really needed",
    "vncviewer": 'xl ignores "vncviewer" (an xm option); use "xl create -V" instead',
    "vif2": "netchannel2 (vif2) is deprecated and not supported by xl",
}

# Options of xm's create.py that xl never reads.
XM_ONLY: Final = _words(
    """
    access_control bootargs bootentry blkif cdrom cpu cpu_cap dhcp fda fdb features
    gateway hostname interface ip ipaddr irq isa macaddr memmap netif netmask nfs_root
    nfs_server nics restart ssidref tpmif usbport vcpu_avail vncconsole
    """
)

DEPRECATED: Final[dict[str, str]] = {
    "builder": 'deprecated since Xen 4.10: use type="hvm" (or "pv")',
    "altp2mhvm": 'deprecated: use "altp2m"',
}
