/* rxhog: a UDP socket that never reads, so every datagram that arrives stays in
 * kernel memory (socket buffers are not counted in any process's RSS).
 * usage: rxhog PORT MIB SECONDS -- binds 0.0.0.0:PORT with a receive buffer of MIB,
 * makes itself the OOM killer's first choice, prints "rxhog: ready", and exits after
 * SECONDS, which frees everything it held (the guest's network then works again). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9999;
    int mib = argc > 2 ? atoi(argv[2]) : 256;
    int seconds = argc > 3 ? atoi(argv[3]) : 60;
    int size = mib << 20;
    struct sockaddr_in addr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    FILE *f;
    if (fd < 0) { perror("rxhog: socket"); return 1; }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        perror("rxhog: SO_RCVBUFFORCE");
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("rxhog: bind"); return 1; }
    f = fopen("/proc/self/oom_score_adj", "w");
    if (f) { fputs("1000", f); fclose(f); }
    printf("rxhog: ready port=%d rcvbuf=%dMiB\n", port, mib);
    fflush(stdout);
    sleep(seconds > 0 ? seconds : 60);
    printf("rxhog: done\n");
    return 0;
}
