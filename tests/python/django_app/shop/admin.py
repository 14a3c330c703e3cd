from django.contrib import admin

from .models import Category, Order, Product, Tag

admin.site.register([Category, Tag, Product, Order])
