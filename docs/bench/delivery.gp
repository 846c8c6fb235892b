set terminal pngcairo size 900,560 noenhanced font ',11'
set output "delivery.png"
set title "Delivery latency at 100 msg/s vs sockets open"
set xlabel "sockets open"
set ylabel "ms, send -> receipt"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
plot "delivery.dat" using 1:2 with linespoints lw 2 pt 7 title "p50", \
     "delivery.dat" using 1:3 with linespoints lw 2 pt 7 title "p99"
