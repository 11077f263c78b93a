memory = 4096
name = "IntrepidPV"
bootloader = "/usr/bin/pygrub"
vif = ["bridge = eth0"]
disk = ["phy:/dev/sdb7,xvda,w"]
vfb = ["type=vnc,vncunused=1"]
