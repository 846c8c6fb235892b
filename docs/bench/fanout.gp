set terminal pngcairo size 900,560 noenhanced font ',11'
set output "fanout.png"
set title "Send and fan-out vs group size"
set xlabel "members (one socket each)"
set ylabel "ms from send_message (median)"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
x1 = 10000.0; y1 = 200.3
plot "fanout.dat" using 1:7 with linespoints lw 2 pt 7 title "send -> sender's own new_message, sender alone online", \
     "fanout.dat" using 1:8 with linespoints lw 2 pt 7 title "the same once every member has read the chat", \
     "fanout.dat" using 1:2 with linespoints lw 2 pt 7 title "send -> sender's own new_message, every member online", \
     "fanout.dat" using 1:9 with linespoints lw 2 pt 7 title "the same, the sender on a client of its own", \
     "fanout.dat" using 1:10 with linespoints lw 2 pt 7 title "the same, the sender's copy on a socket without nginx", \
     "fanout.dat" using 1:3 with linespoints lw 2 pt 7 title "send -> first member", \
     "fanout.dat" using 1:4 with linespoints lw 2 pt 7 title "send -> last member", \
     y1 * x / x1 with lines dt 2 lc rgb 'gray' title 'linear (slope 1)'
